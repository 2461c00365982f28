"""The projector never skips an event while appends (records + repo events) commit concurrently:
READ COMMITTED gives each statement its own snapshot, so the page read must be bounded by one head."""

from __future__ import annotations

import asyncio
import contextlib

from core.db.connect import connect
from ingester.eventlog.append import append_batch
from ingester.projection.runner import Projector
from tests.appview.world import tid
from tests.ingester import events as ev


async def test_no_event_skipped_under_racing_appends(db_url: str) -> None:
    writers, batches = 3, 40
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        async with await connect(db_url) as conn:
            for b in range(batches):
                did = f"did:plc:w{w}b{b:03d}aaaaaaaaaaaaaaaa"
                n = (w * batches + b) * 4
                # records then a repo event in one batch: the repo event gets the highest seq
                await append_batch(conn, [ev.put(did, "fm.plyr.track", tid(n + i), tid(n + i), ev.track(f"t{i}"))
                                          for i in range(3)] + [ev.identity(did, f"w{w}b{b}.test")])

    async def project() -> None:
        async with await connect(db_url) as conn:
            projector = Projector(batch_size=7)
            while not stop.is_set():
                await projector.step(conn)
                await asyncio.sleep(0)

    runner = asyncio.create_task(project())
    await asyncio.gather(*(writer(w) for w in range(writers)))
    stop.set()
    await runner
    async with await connect(db_url) as conn:
        await Projector(batch_size=7).catch_up(conn)
        cur = await conn.execute("SELECT count(*) FROM track")
        row = await cur.fetchone()
    assert row is not None and row[0] == writers * batches * 3


async def test_live_projector_is_woken_by_every_append(db_url: str) -> None:
    """Live mode waits for a NOTIFY after every short page instead of stepping again to confirm the log is
    drained: appends racing each step (one event, several, right after a step) are all projected with the
    idle re-check out of the way, so a lost wake-up would hang this test rather than pass it late."""
    projector = Projector(batch_size=4)
    projector.idle_recheck_s = 3600.0
    stop = asyncio.Event()
    live = asyncio.create_task(projector.follow(db_url, stop))
    async with await connect(db_url) as conn:
        for b in range(30):
            did = f"did:plc:live{b:03d}aaaaaaaaaaaaaaaaaa"
            await append_batch(conn, [ev.put(did, "fm.plyr.track", tid(b * 8 + i), tid(b * 8 + i), ev.track(f"t{i}"))
                                      for i in range(1 + b % 6)])  # 1..6 events: short pages and full ones
            if b % 3 == 0:
                await asyncio.sleep(0)  # sometimes appended while the projector is mid-step, sometimes not
        head = (await (await conn.execute("SELECT max(seq) FROM record_event")).fetchone() or (0,))[0]
        await conn.commit()

        async def projected() -> None:
            while True:
                row = await (await conn.execute("SELECT position FROM projection_cursor WHERE name = 'main'")).fetchone()
                await conn.commit()
                if row and row[0] == head:
                    return
                await asyncio.sleep(0.01)

        await asyncio.wait_for(projected(), 60)
        assert (await (await conn.execute("SELECT count(*) FROM track")).fetchone() or (0,))[0] == sum(
            1 + b % 6 for b in range(30))
    stop.set()
    live.cancel()  # it waits for the next NOTIFY (or the hour-long re-check) before it looks at `stop`
    with contextlib.suppress(asyncio.CancelledError):
        await live
