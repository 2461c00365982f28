"""Replica lag arithmetic and the cache's rules across read targets, without a database (the real streaming
replica is in test_replicas.py)."""

from __future__ import annotations

from typing import Any

from appview.cache import ResponseCache
from appview.replicas import Replica, ReplicaMonitor


def monitor(primary: int | None = 10, max_lag_s: float = 30.0) -> tuple[ReplicaMonitor, Replica]:
    m = ReplicaMonitor(["postgresql://r1/db"], pool_max=1, poll_s=1, timeout_s=1, max_lag_s=max_lag_s,
                       primary_position=lambda: primary)
    return m, m.replicas[0]


def test_an_idle_caught_up_replica_has_no_lag_however_long_ago_the_last_write() -> None:
    m, r = monitor()
    m.note_primary(1000, 10, now=0.0)
    m.note_primary(1000, 10, now=3600.0)  # nothing written for an hour: still the first sighting
    m.observe(r, True, 1000, False, 10, now=7200.0)
    assert (r.lag_seconds, r.lag_bytes, r.lag_events, r.serving) == (0.0, 0, 0, True)


def test_lag_is_the_age_of_the_oldest_wal_not_replayed() -> None:
    m, r = monitor(primary=30)
    for lsn, t in ((100, 0.0), (200, 5.0), (300, 9.0)):
        m.note_primary(lsn, 30, now=t)
    m.observe(r, True, 100, True, 10, now=10.0)  # paused at 100
    assert (r.lag_seconds, r.lag_bytes, r.lag_events, r.paused) == (5.0, 200, 20, True)
    m.observe(r, True, 250, False, 20, now=10.0)
    assert (r.lag_seconds, r.lag_bytes) == (1.0, 50)
    m.observe(r, True, 300, False, 30, now=10.0)
    assert (r.lag_seconds, r.lag_bytes, r.lag_events) == (0.0, 0, 0)


def test_too_far_behind_stops_serving_and_catching_up_resumes() -> None:
    m, r = monitor(max_lag_s=2)
    m.note_primary(100, 10, now=0.0)
    m.note_primary(200, 10, now=1.0)
    m.observe(r, True, 100, True, 9, now=2.5)
    assert r.up and r.serving and r.lag_seconds == 1.5
    m.observe(r, True, 100, True, 9, now=3.5)
    assert r.up and not r.serving
    m.observe(r, True, 200, False, 10, now=4.0)
    assert r.serving


def test_a_down_replica_is_out_of_use_and_its_lag_keeps_growing() -> None:
    m, r = monitor()
    m.note_primary(100, 10, now=0.0)
    m.observe(r, True, 100, False, 10, now=1.0)
    m.note_primary(150, 11, now=2.0)
    r.fail(OSError("connection refused"), by="poll")
    m.update_lag(r, now=12.0)
    assert not r.up and not r.serving and r.pool_broken and r.error == "OSError: connection refused"
    assert r.lag_seconds == 10.0 and r.lag_bytes == 50


def test_a_replica_that_is_not_a_standby_is_judged_by_its_projector_position() -> None:
    m, r = monitor(primary=10)
    m.observe(r, False, None, None, 10, now=1.0)
    assert (r.lag_seconds, r.lag_bytes, r.lag_events, r.serving) == (0.0, None, 0, True)
    m2, r2 = monitor(primary=12)
    m2.observe(r2, False, None, None, 10, now=1.0)
    assert (r2.lag_seconds, r2.lag_events, r2.serving) == (None, 2, True)


async def _serve(cache: ResponseCache, scope_position: int, body: bytes, during: Any = None) -> bytes:
    out: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if during is not None:
            during()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            out.append(message["body"])

    async def receive() -> Any:
        return {"type": "http.request"}

    cache.app = app
    cache.position_of = lambda scope: scope_position
    await cache({"type": "http", "method": "GET", "path": "/tracks/", "query_string": b"", "headers": []},
                receive, send)
    return b"".join(out)


async def test_the_cache_serves_an_entry_newer_than_the_request_replica_and_never_replaces_it_with_older() -> None:
    key = ("/tracks/", b"")
    cache = ResponseCache(lambda *_: None, lambda scope: None, stale_s=0)  # type: ignore[arg-type]
    assert await _serve(cache, 10, b"at 10") == b"at 10"  # computed on a current replica
    assert await _serve(cache, 7, b"at 7") == b"at 10"  # a lagging replica's request: the fresher entry
    assert await _serve(cache, 12, b"at 12") == b"at 12"  # moved on: recomputed
    # A slow request on a lagging replica finishes after a current one stored a newer answer: it is not kept.
    newer = lambda: cache._store(key, 15, [], b"at 15", None)  # noqa: E731
    assert await _serve(cache, 13, b"at 13", during=newer) == b"at 13"  # the request itself gets its answer
    assert cache.entries[key][0] == 15 and cache.entries[key][3] == b"at 15"
