"""/health and /ready tell the truth about a real ingester (its heartbeats in Postgres) and the database."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool
from structlog.testing import capture_logs

from appview.app import create_app
from appview.health import Reading, Row, judge
from appview.settings import AppviewSettings
from core.db.connect import connect
from ingester.eventlog.append import append_batch
from ingester.projection.runner import Projector
from ingester.service import Ingester
from ingester.settings import IngesterSettings
from tests.ingester import events as ev

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


def ingester_settings(db_url: str, **overrides: Any) -> IngesterSettings:
    base: dict[str, Any] = {"database_url": db_url, "firehose_hosts": "", "labelers": "", "blob_mirror": False,
                            "resync_enabled": False, "health_heartbeat_s": 0.05, "supervisor_backoff_cap_s": 0.2}
    return IngesterSettings(**(base | overrides))


@asynccontextmanager
async def running_ingester(settings: IngesterSettings, url: str) -> AsyncIterator[Ingester]:
    ingester, stop = Ingester(settings, url), asyncio.Event()
    task = asyncio.create_task(ingester.run(stop))
    try:
        yield ingester
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@asynccontextmanager
async def api(url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(AppviewSettings(**settings), url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def until(client: httpx.AsyncClient, path: str, check: Callable[[httpx.Response], bool],
                timeout: float = 30.0) -> httpx.Response:
    """Poll `path` until `check` holds (the ingester is asynchronous); the last response otherwise."""
    r = await client.get(path)
    async with asyncio.timeout(timeout):
        while not check(r):
            await asyncio.sleep(0.05)
            r = await client.get(path)
    return r


async def seed(db_url: str, n: int = 3) -> None:
    async with await connect(db_url) as conn:
        await append_batch(conn, [ev.put(A, "fm.plyr.track", f"3kaaaaaaaaa2{i}", f"3k000000000{i}a", ev.track())
                                  for i in range(n)])


async def test_projector_stuck_is_not_ready_then_recovers(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await seed(db_url)
    broken = True
    real_apply = Projector._apply

    async def poisoned(self: Projector, cur: Any, events: Any) -> None:
        if broken:
            raise KeyError("poison event")
        await real_apply(self, cur, events)

    monkeypatch.setattr(Projector, "_apply", poisoned)
    with capture_logs() as logs:
        async with running_ingester(ingester_settings(db_url), db_url), \
                api(db_url, projector_stuck_s=0.3, health_stale_s=30) as client:
            r = await until(client, "/ready", lambda r: r.status_code == 503
                            and "KeyError" in r.json()["problems"].get("projector", ""))
            assert r.json()["status"] == "not_ready"
            assert "stuck: 3 events behind" in r.json()["problems"]["projector"]
            health = await client.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "degraded"
            assert "stuck" in health.json()["components"]["projector"]["problem"]

            broken = False  # the bug is fixed: the restarted projector catches up
            r = await until(client, "/ready", lambda r: r.status_code == 200)
            assert r.json() == {"status": "ready"}
            health = await until(client, "/health", lambda r: r.json()["status"] == "ok")
            assert health.json()["components"]["projector"]["state"] == "up"
            assert health.json()["projector_position"] == health.json()["log_head"]
        # the ingester stopped on purpose: its rows say so, and (auto) the API stays ready
        async with api(db_url) as client:
            health = (await client.get("/health")).json()
            assert {c["state"] for c in health["components"].values()} == {"stopped"}
            assert (await client.get("/ready")).status_code == 200
        async with api(db_url, ready_requires_ingest="true") as client:
            r2 = await client.get("/ready")
            assert r2.status_code == 503 and "ingester" in r2.json()["problems"]
    failures = [e for e in logs if e["event"] == "supervisor.component_failed" and e["component"] == "projector"]
    assert failures and all(e["exc_info"] for e in failures)


async def test_source_not_connected_past_grace_is_not_ready(db_url: str) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused, the source keeps retrying
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = ingester_settings(db_url, firehose_hosts=f"ws://127.0.0.1:{port}")
    async with running_ingester(settings, db_url), api(db_url, source_down_grace_s=0) as client:
        r = await until(client, "/ready", lambda r: r.status_code == 503
                        and f"firehose:127.0.0.1:{port}" in r.json().get("problems", {}))
        assert "not connected" in r.json()["problems"][f"firehose:127.0.0.1:{port}"]
        health = (await client.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["components"][f"firehose:127.0.0.1:{port}"]["state"] in ("connecting", "starting")
    async with running_ingester(settings, db_url), api(db_url, source_down_grace_s=3600) as client:
        # within the grace period: still ready, but /health says the source is not up
        r = await until(client, "/health", lambda r: r.json().get("components", {}).get(
            f"firehose:127.0.0.1:{port}", {}).get("state") == "connecting")
        assert r.json()["status"] == "degraded"
        assert (await client.get("/ready")).status_code == 200


async def test_serve_only_is_ready_and_the_setting_can_require_an_ingester(db_url: str) -> None:
    async with api(db_url) as client:
        assert (await client.get("/ready")).json() == {"status": "ready"}
        assert (await client.get("/health")).json()["status"] == "ok"
    async with api(db_url, ready_requires_ingest="true") as client:
        r = await client.get("/ready")
        assert r.status_code == 503 and "no running ingester" in r.json()["problems"]["ingester"]


async def test_a_stale_heartbeat_is_not_ready_unless_ingest_is_ignored(db_url: str) -> None:
    async with await connect(db_url, autocommit=True) as conn:
        await conn.execute("INSERT INTO component_health (component, kind, state, since, updated_at)"
                           " VALUES ('firehose:relay.example', 'source', 'up', now(), now() - interval '1 hour')")
    async with api(db_url) as client:
        r = await client.get("/ready")
        assert r.status_code == 503 and "no heartbeat for 36" in r.json()["problems"]["firehose:relay.example"]
        assert (await client.get("/health")).json()["status"] == "degraded"
    async with api(db_url, ready_requires_ingest="false") as client:
        assert (await client.get("/ready")).status_code == 200
        assert (await client.get("/health")).json()["status"] == "degraded"


async def test_an_unreachable_database_is_not_ready_and_health_stays_fast(db_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(AppviewSettings(health_timeout_s=0.3), db_url)
    async with app.router.lifespan_context(app):
        # The database goes away after start: the pool can no longer hand out connections.
        alive = app.state.pool
        app.state.pool = AsyncConnectionPool(f"postgresql://postgres@127.0.0.1:{port}/gone", min_size=0,
                                             max_size=1, open=False, reconnect_timeout=1)
        await app.state.pool.open()
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                health = await client.get("/health")
                assert health.status_code == 200 and health.json()["status"] == "degraded"
                assert health.json()["database"].startswith("unavailable")
                ready = await client.get("/ready")
                assert ready.status_code == 503 and ready.json()["problems"]["database"].startswith("unavailable")
        finally:
            await app.state.pool.close()
            app.state.pool = alive


def test_judge_never_trusts_odd_rows() -> None:
    """Hostile or half-written rows (unknown kinds, missing detail) are judged, never crash the endpoint."""
    s = AppviewSettings(projector_stuck_s=10, source_down_grace_s=10, health_stale_s=10)
    rows = [Row("weird", "alien", "dancing", {}, 1e9, 0.0),
            Row("projector", "projector", "up", {}, 0.0, 0.0),  # no progress_age_s at all
            Row("labels:x", "source", "restarting", {"last_error": "ValueError: x"}, 11.0, 1.0)]
    verdict = judge(Reading(rows, log_head=5, position=None), s)
    assert set(verdict.problems) == {"labels:x"} and "ValueError" in verdict.problems["labels:x"]
    assert verdict.degraded
