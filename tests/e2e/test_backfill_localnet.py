"""Converge from anywhere: the same world written to the real reference PDS reaches the same projections
whether we followed it live, backfilled it afterwards, or backfilled half-way and then went live while the
writes went on; and a repo whose frames we missed is repaired by resync, deletions included."""

from __future__ import annotations

import asyncio

from core.db.connect import connect
from ingester.backfill import jobs
from ingester.backfill.discovery import from_pds
from ingester.service import backfill_once
from ingester.sources.repos import RepoFetcher
from tests.e2e.backfill_kit import World, fresh_db, handle, project, rkey, same_digest, track
from tests.e2e.conftest import Query, RunningIngester, eventually, ingester_settings
from tests.localnet.peer import Localnet, Xrpc


async def test_live_backfill_and_cutover_reach_the_same_digest(localnet: Localnet, xrpc: Xrpc, pg_server_url: str,
                                                               template_db: str) -> None:
    async with (fresh_db(pg_server_url, template_db) as live_db, fresh_db(pg_server_url, template_db) as late_db,
                fresh_db(pg_server_url, template_db) as cut_db, fresh_db(pg_server_url, template_db) as buf_db):
        # (a) follows the PDS live from before the first write
        live = RunningIngester(ingester_settings(live_db, localnet), live_db)
        await live.start()
        accounts = [await xrpc.create_account(handle(p)) for p in ("ann", "ben", "cat")]
        dids = [a.did for a in accounts]
        world = World(xrpc, accounts)
        await world.phase(1)

        # (c) starts half-way: backfills what exists while following live, and the writes go on meanwhile;
        # twice: live commits of a repo being resynced logged at once (default), or buffered until the replay
        for db in (cut_db, buf_db):
            async with await connect(db) as conn:
                await jobs.enqueue(conn, dids, "test: half-way")
        cut = RunningIngester(ingester_settings(cut_db, localnet), cut_db)
        buf = RunningIngester(ingester_settings(buf_db, localnet, resync_buffer_live=True), buf_db)
        await cut.start()
        await buf.start()
        await asyncio.gather(world.phase(2), world.phase(3))

        # (b) starts after everything was written and only backfills (the `appview backfill` path)
        async with RepoFetcher(allow_private=True) as fetcher:  # the local PDS: http on loopback
            discovered = await from_pds(fetcher, localnet.pds_url)
        assert set(dids) <= discovered  # listRepos discovery finds every account
        counters = await backfill_once(ingester_settings(late_db, localnet), late_db, dids=dids, progress=False)
        assert (counters.done, counters.failed) == (3, 0)
        await project(late_db)

        try:
            final = await same_digest([live_db, late_db, cut_db, buf_db])
        finally:
            await live.stop()
            await cut.stop()
            await buf.stop()
        tables = {t.table: t.rows for t in final.tables}
        assert tables["track"] == 3 * 3 * 2 and tables["list"] == 9 and tables["actor"] == 3

        for db in (cut_db, buf_db):
            async with await connect(db) as conn, conn.cursor() as cur:
                await cur.execute("SELECT source = 'backfill', count(*) FROM record_event GROUP BY 1 ORDER BY 1")
                by_source = dict(await cur.fetchall())
                await cur.execute("SELECT count(*) FROM repo_state WHERE sync_status = 'synchronized'")
                synced = (await cur.fetchone())[0]
            assert by_source.get(True) and by_source.get(False)  # both the snapshot and the live stream wrote
            assert synced == 3


async def test_missed_frames_are_repaired_by_resync(xrpc: Xrpc, ingester: RunningIngester, q: Query,
                                                    db_url: str) -> None:
    eve = await xrpc.create_account(handle("eve"))
    t1 = await xrpc.create(eve, "fm.plyr.track", track("one"))
    t2 = await xrpc.create(eve, "fm.plyr.track", track("two"))
    await xrpc.create(eve, "fm.plyr.track", track("three"))
    await eventually(q, "SELECT count(*) FROM track WHERE did = %s", [(3,)], eve.did)
    await eventually(q, "SELECT sync_status FROM repo_state WHERE did = %s", [("synchronized",)], eve.did)

    # Down; while away a delete, an edit and a create happen, and their frames are lost for good: the
    # ingester comes back at the live tip instead of its cursor.
    await ingester.stop()
    await xrpc.delete(eve, "fm.plyr.track", rkey(t1["uri"]))
    await xrpc.put(eve, "fm.plyr.track", rkey(t2["uri"]), track("two (edit)"))
    await xrpc.create(eve, "fm.plyr.track", track("four"))
    async with await connect(db_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM source_cursor")
    await ingester.start()

    # The next commit does not stack on what we saw (since != our rev): desynchronized, resynced, repaired.
    await xrpc.create(eve, "fm.plyr.track", track("five"))
    await eventually(q, "SELECT title FROM track WHERE did = %s ORDER BY title",
                     [("five",), ("four",), ("three",), ("two (edit)",)], eve.did, timeout=30)
    await eventually(q, "SELECT sync_status FROM repo_state WHERE did = %s", [("synchronized",)], eve.did)
    assert await q("SELECT action FROM record_event WHERE did = %s AND source = 'backfill' AND rkey = %s",
                   eve.did, rkey(t1["uri"])) == [("delete",)]
    assert await q("SELECT status FROM backfill_job WHERE did = %s", eve.did) == [("done",)]
    assert await q("SELECT count(*) FROM repo_event WHERE did = %s AND kind = 'desync'", eve.did) == [(1,)]
