"""Real lag: /status's per-source lag is 0 for an idle caught-up source and grows for a stalled one; the
log-head and projector-lag metrics follow the tables."""

from __future__ import annotations

import asyncio
import re

import psycopg
from psycopg.types.json import Jsonb

from appview.status import read_status
from core.db.connect import connect
from ingester.eventlog.append import append_batch
from ingester.projection.runner import Projector
from ingester.sources.budget import ByteQueue
from ingester.sources.firehose import FirehoseSource, HandlerResult
from tests.appview.world import client
from tests.hostile.firehose_server import HostileRelay, identity_with_seq
from tests.ingester.events import identity, put, track
from tests.ingester.framekit import tid


async def test_queue_lag_is_zero_when_everything_is_committed() -> None:
    q = ByteQueue(1 << 20)
    assert q.pending_s() == 0.0
    await q.put(b"a")
    await q.put(b"bb")
    await asyncio.sleep(0.05)
    first = q.pending_s()
    await asyncio.sleep(0.05)
    assert first >= 0.05 and q.pending_s() > first  # waiting frames: the lag grows
    a = await q.get()
    await q.done([a])
    assert 0 < q.pending_s() < first + 0.1  # the next frame's wait
    b = await q.get()
    await q.done([b])
    assert q.pending_s() == 0.0


async def _source_lag(stall: bool) -> list[float]:
    """A real source following a relay that sends 5 frames then idles; the lag read three times."""
    relay = HostileRelay([identity_with_seq(i) for i in range(1, 6)])
    release = asyncio.Event()

    async def handler(frames: object) -> HandlerResult:
        if stall:
            await release.wait()  # a commit that never finishes (database stuck)
        return HandlerResult(last_seq=None)

    async with relay.running():
        source = FirehoseSource(relay.url, cursor=0)
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(handler, stop))
        try:
            await asyncio.wait_for(source.connected.wait(), 10)
            readings = []
            for _ in range(3):
                await asyncio.sleep(0.3)
                readings.append(source.queue.pending_s())
        finally:
            release.set()
            stop.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return readings


async def test_idle_caught_up_source_has_no_lag() -> None:
    assert await _source_lag(stall=False) == [0.0, 0.0, 0.0]


async def test_stalled_source_lag_grows() -> None:
    lag = await _source_lag(stall=True)
    assert lag[0] > 0.2 and lag[0] < lag[1] < lag[2]


async def _heartbeat(conn: psycopg.AsyncConnection, component: str, state: str, lag_s: float | None,
                     age_s: float) -> None:
    await conn.execute(
        "INSERT INTO component_health (component, kind, state, detail, updated_at)"
        " VALUES (%s, 'source', %s, %s, now() - make_interval(secs => %s))"
        " ON CONFLICT (component) DO UPDATE SET state = EXCLUDED.state, detail = EXCLUDED.detail,"
        " updated_at = EXCLUDED.updated_at", (component, state, Jsonb({"cursor": 42, "lag_s": lag_s}), age_s))


async def test_status_lag_is_real(db_url: str) -> None:
    async with await connect(db_url, autocommit=True) as conn:
        for name in ("firehose:idle.example", "firehose:stalled.example", "firehose:gone.example"):
            # Every cursor last moved two minutes ago (the old lag_seconds said 120 for all three).
            await conn.execute("INSERT INTO source_cursor (source, cursor, updated_at)"
                               " VALUES (%s, 42, now() - interval '123 seconds')", (name,))
        await _heartbeat(conn, "firehose:idle.example", "up", 0.0, 1)
        await _heartbeat(conn, "firehose:stalled.example", "up", 5.0, 1)
        await _heartbeat(conn, "firehose:gone.example", "up", 0.0, 3600)  # the ingester died an hour ago
        first = {s.source: s for s in (await read_status(conn)).sources}
        await asyncio.sleep(1.1)
        second = {s.source: s for s in (await read_status(conn)).sources}
    idle, stalled, gone = (f"firehose:{h}.example" for h in ("idle", "stalled", "gone"))
    assert first[idle].lag_seconds == second[idle].lag_seconds == 0.0 and first[idle].live
    assert 6.0 <= first[stalled].lag_seconds < second[stalled].lag_seconds  # 5 s at the heartbeat, and growing
    assert not first[gone].live and first[gone].lag_seconds >= 123  # no fresh heartbeat: since the cursor moved


def _gauge(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, name
    return float(match.group(1))


async def test_log_and_projector_lag_metrics(db_url: str) -> None:
    did = "did:plc:" + "m" * 24
    async with await connect(db_url, autocommit=True) as conn:
        first = await append_batch(conn, [identity(did, "m.test"), put(did, "fm.plyr.track", "a", tid(1), track())])
        await Projector().catch_up(conn)
        await conn.execute("UPDATE record_event SET received_at = now() - interval '1 hour'")
        later = await append_batch(conn, [put(did, "fm.plyr.track", "b", tid(2), track()),
                                          put(did, "fm.plyr.track", "c", tid(3), track())])
        await conn.execute("UPDATE record_event SET received_at = now() - interval '90 seconds' WHERE seq > %s",
                           (first.head,))
    async with client(db_url) as http:
        text = (await http.get("/metrics")).text
        assert _gauge(text, "appview_log_head_seq") == later.head
        assert _gauge(text, "appview_projector_lag_events") == 2
        assert 90 <= _gauge(text, "appview_projector_lag_seconds") < 150  # the oldest unfolded, not the newest
        async with await connect(db_url) as conn:
            await Projector().catch_up(conn)
        text = (await http.get("/metrics")).text
        assert _gauge(text, "appview_projector_lag_events") == 0
        assert _gauge(text, "appview_projector_lag_seconds") == 0


async def test_status_page_counts_the_partitioned_log(db_url: str) -> None:
    from appview.pages.status_data import row_estimates

    did = "did:plc:" + "n" * 24
    async with await connect(db_url, autocommit=True) as conn:
        await append_batch(conn, [put(did, "fm.plyr.track", f"k{i}", tid(i + 1), track()) for i in range(5)])
        for _ in range(50):  # the statistics collector reports asynchronously
            if (await row_estimates(conn)).get("record_event") == 5:
                break
            await asyncio.sleep(0.1)
        assert (await row_estimates(conn)).get("record_event") == 5
