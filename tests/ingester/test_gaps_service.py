"""The service wiring of gaps: a PDS's `#info OutdatedCursor` and a Jetstream's `CursorTooOld` turn into
resync jobs `gap:<source>` for the repos we track, through the running `Ingester` (fake upstreams)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from core.db.connect import connect
from ingester.eventlog.append import append_batch
from ingester.service import Ingester
from ingester.settings import IngesterSettings
from ingester.sources.jetstream import source_name as jetstream_source_name
from tests.ingester import events as ev
from tests.ingester.framekit import info_frame
from tests.jetstream_fake.server import FakeJetstream

A, B = (f"did:plc:{c * 24}" for c in "ab")


def settings(db_url: str, **kw: object) -> IngesterSettings:
    base: dict[str, object] = dict(database_url=db_url, plc_url="http://127.0.0.1:9", labelers="",
                                   blob_mirror=False, backfill_retry_interval_s=3600.0)
    return IngesterSettings(**(base | kw))  # type: ignore[arg-type]


async def track_two_repos(db_url: str) -> None:
    async with await connect(db_url) as conn:
        await append_batch(conn, [ev.put(d, "fm.plyr.track", "3kaaaaaaaaa22", "3k0000000001a", ev.track())
                                  for d in (A, B)])


async def gap_jobs(db_url: str, source: str) -> list[str]:
    for _ in range(400):
        async with await connect(db_url) as conn, conn.cursor() as cur:
            await cur.execute("SELECT did FROM backfill_job WHERE reason = %s ORDER BY did", (f"gap:{source}",))
            dids = [r[0] for r in await cur.fetchall()]
        if dids:
            return dids
        await asyncio.sleep(0.05)
    return []


@pytest.fixture
async def outdated_pds() -> AsyncIterator[str]:
    """A 'PDS' that answers every subscription with `#info OutdatedCursor`, then stays quiet."""
    async def handler(ws: ServerConnection) -> None:
        await ws.send(info_frame("OutdatedCursor", "Requested cursor exceeded limit. Possibly missing events"))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"


async def run_until(ingester: Ingester, check: asyncio.Future[list[str]]) -> list[str]:
    stop = asyncio.Event()
    task = asyncio.create_task(ingester.run(stop))
    try:
        return await check
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_an_outdated_cursor_from_a_pds_enqueues_resyncs(db_url: str, outdated_pds: str) -> None:
    await track_two_repos(db_url)
    ingester = Ingester(settings(db_url, firehose_hosts=outdated_pds), db_url)
    source = f"firehose:{outdated_pds.removeprefix('ws://')}"
    dids = await run_until(ingester, asyncio.ensure_future(gap_jobs(db_url, source)))
    assert dids == [A, B]  # this PDS hosts none of the repos we know: all of them may be behind it


async def test_cursor_too_old_from_jetstream_enqueues_resyncs(db_url: str) -> None:
    await track_two_repos(db_url)
    fake = await FakeJetstream(floor_seq=5).start()
    try:
        name = jetstream_source_name(fake.url, "v2")
        async with await connect(db_url) as conn:
            await conn.execute("INSERT INTO source_cursor (source, cursor) VALUES (%s, 2)", (name,))
            await conn.commit()
        ingester = Ingester(settings(db_url, firehose_hosts="", jetstream_urls=fake.url, jetstream_compress=False,
                                     resync_enabled=False), db_url)

        async def gap_then_floor() -> list[str]:
            dids = await gap_jobs(db_url, name)
            for _ in range(400):  # recorded first, then connected at the floor
                if any("cursor=5" in r for r in fake.requests):
                    break
                await asyncio.sleep(0.05)
            return dids

        assert await run_until(ingester, asyncio.ensure_future(gap_then_floor())) == [A, B]
        assert any("cursor=5" in r for r in fake.requests)
    finally:
        await fake.stop()
