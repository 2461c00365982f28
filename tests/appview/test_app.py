"""The read side's operational endpoints, served by the real app against a real Postgres."""

from __future__ import annotations

import httpx

from appview.app import create_app
from appview.settings import AppviewSettings
from core.db.connect import connect
from ingester.eventlog.append import append_batch
from tests.ingester import events as ev

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"


async def test_health_ready_status_metrics(db_url: str) -> None:
    async with await connect(db_url) as conn:
        await append_batch(conn, [ev.put(A, "fm.plyr.track", "3kaaaaaaaaa22", "3k0000000001a", ev.track())],
                           cursor=("firehose:relay.example", 42))
    app = create_app(AppviewSettings(), db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            health = (await client.get("/health")).json()
            assert health["status"] == "ok" and health["components"] == {}  # no ingester heartbeats: serve-only
            assert (await client.get("/ready")).json() == {"status": "ready"}
            status = (await client.get("/status")).json()
            assert status["log_head"] >= 1 and status["projector_position"] == 0
            assert status["projector_lag_events"] == status["log_head"]
            assert [(s["source"], s["cursor"]) for s in status["sources"]] == [("firehose:relay.example", 42)]
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200 and "python_info" in metrics.text
