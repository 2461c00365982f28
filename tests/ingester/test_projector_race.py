"""The projector never skips an event while appends (records + repo events) commit concurrently:
READ COMMITTED gives each statement its own snapshot, so the page read must be bounded by one head."""

from __future__ import annotations

import asyncio

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
