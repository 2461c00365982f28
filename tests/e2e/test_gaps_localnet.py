"""Against the real reference PDS: an account inactive when we backfilled appears as soon as it is reactivated,
and a fresh ingester started from a given cursor gets exactly the writes after it."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from core.db.connect import connect
from ingester.service import Ingester, backfill_once
from ingester.settings import IngesterSettings
from ingester.sources.firehose import source_name
from tests.e2e.backfill_kit import fresh_db, handle, track
from tests.e2e.conftest import Query, RunningIngester, eventually, ingester_settings
from tests.localnet.peer import Localnet, Xrpc

TITLES = "SELECT title FROM track WHERE did = %s ORDER BY title"


async def test_an_account_inactive_at_backfill_appears_when_reactivated(localnet: Localnet, xrpc: Xrpc, q: Query,
                                                                        db_url: str) -> None:
    dan = await xrpc.create_account(handle("dan"))
    for title in ("one", "two"):
        await xrpc.create(dan, "fm.plyr.track", track(title))
    await xrpc.call("com.atproto.server.deactivateAccount", {}, dan)
    fay = await xrpc.create_account(handle("fay"))  # active: backfilled as usual
    await xrpc.create(fay, "fm.plyr.track", track("hers"))

    # `appview backfill --pds`: every active account on the PDS is fetched; dan is recorded, waiting
    counters = await backfill_once(ingester_settings(db_url, localnet), db_url, pds_hosts=[localnet.pds_url],
                                   progress=False)
    assert counters.done >= 1 and dan.did not in counters.failures
    assert await q("SELECT status FROM backfill_job WHERE did = %s", fay.did) == [("done",)]
    assert await q("SELECT status, reason FROM backfill_job WHERE did = %s", dan.did) == [
        ("waiting", f"listRepos {localnet.pds_url}: account deactivated")]
    assert await q(TITLES, dan.did) == []

    running = RunningIngester(ingester_settings(db_url, localnet), db_url)
    await running.start()
    try:
        await xrpc.call("com.atproto.server.activateAccount", None, dan)
        # no write: the #account event alone brings the records in
        await eventually(q, TITLES, [("one",), ("two",)], dan.did, timeout=60)
        await eventually(q, "SELECT status, reason FROM backfill_job WHERE did = %s",
                         [("done", "reactivated: #account active")], dan.did)
    finally:
        await running.stop()


async def test_a_fresh_ingester_starts_from_the_cursor_it_is_given(localnet: Localnet, xrpc: Xrpc,
                                                                   pg_server_url: str, template_db: str) -> None:
    eli = await xrpc.create_account(handle("eli"))
    for title in ("a1", "a2"):
        await xrpc.create(eli, "fm.plyr.track", track(title))
    name = source_name(localnet.ws_url)
    # Resync off: what arrives is what the stream replays, not a getRepo of the repo first seen mid-chain.
    off = {"resync_enabled": False, "blob_mirror": False}
    async with (fresh_db(pg_server_url, template_db) as probe_db, fresh_db(pg_server_url, template_db) as all_db,
                fresh_db(pg_server_url, template_db) as late_db, fresh_db(pg_server_url, template_db) as forced_db):
        probe = RunningIngester(ingester_settings(probe_db, localnet, firehose_start_cursor=0, **off), probe_db)
        await probe.start()
        async with await connect(probe_db, autocommit=True) as conn:
            pq = _query(conn)
            await eventually(pq, TITLES, [("a1",), ("a2",)], eli.did, timeout=60)
            [(n,)] = await pq("SELECT cursor FROM source_cursor WHERE source = %s", name)
        await probe.stop()
        for title in ("b1", "b2"):
            await xrpc.create(eli, "fm.plyr.track", track(title))

        everything = RunningIngester(ingester_settings(all_db, localnet, firehose_start_cursor=0, **off), all_db)
        late = RunningIngester(ingester_settings(late_db, localnet, firehose_start_cursor=n, **off), late_db)
        await everything.start()
        await late.start()
        try:
            async with await connect(all_db, autocommit=True) as a, await connect(late_db, autocommit=True) as b:
                await eventually(_query(a), TITLES, [("a1",), ("a2",), ("b1",), ("b2",)], eli.did, timeout=60)
                await eventually(_query(b), TITLES, [("b1",), ("b2",)], eli.did, timeout=60)
                [(head,)] = await _query(a)("SELECT cursor FROM source_cursor WHERE source = %s", name)
        finally:
            await everything.stop()
            await late.stop()

        # forced (`appview ingest --cursor 0`), a cursor wins over a committed one already past every write
        async with await connect(forced_db, autocommit=True) as f:
            await f.execute("INSERT INTO source_cursor (source, cursor) VALUES (%s, %s)", (name, head))
            forced = ForcedIngester(ingester_settings(forced_db, localnet, **off), forced_db, firehose=0)
            await forced.start()
            try:
                await eventually(_query(f), TITLES, [("a1",), ("a2",), ("b1",), ("b2",)], eli.did, timeout=60)
            finally:
                await forced.stop()


class ForcedIngester(RunningIngester):
    def __init__(self, settings: IngesterSettings, url: str, *, firehose: int) -> None:
        super().__init__(settings, url)
        self.firehose = firehose

    async def start(self) -> Ingester:
        self.stop_event = asyncio.Event()
        self.ingester = Ingester(self.settings, self.url)
        self.ingester.start.force(firehose=self.firehose)  # what `appview ingest --cursor N` does
        self.task = asyncio.create_task(self.ingester.run(self.stop_event))
        for _ in range(600):
            if self.ingester.sources and self.ingester.sources[0].connected.is_set():
                return self.ingester
            await asyncio.sleep(0.05)
        raise TimeoutError("ingester did not connect to its source")


def _query(conn: psycopg.AsyncConnection) -> Query:
    async def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with conn.cursor() as cur:
            await cur.execute(sql, params)
            return await cur.fetchall()

    return query
