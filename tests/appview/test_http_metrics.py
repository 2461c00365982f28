"""Every route is counted and timed under its template: REST, XRPC, /audio, cached answers, and junk paths
(which must never create a label per path)."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client import REGISTRY

from appview.app import create_app
from appview.settings import AppviewSettings


def count(route: str, method: str = "GET", status: str = "200") -> float:
    v = REGISTRY.get_sample_value("appview_http_requests_total", {"route": route, "method": method, "status": status})
    return v or 0.0


async def test_routes_are_counted_by_template(db_url: str) -> None:
    app = create_app(AppviewSettings(response_cache=True), db_url)
    before = {r: count(r) for r in ("/tracks/", "/xrpc/fm.plyr.feed.getLatest", "/tracks/{track_id}")}
    junk_before = count("<unmatched>", status="404")
    audio_before = sum(count("/audio/{file_id}", m, "404") for m in ("GET",))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            for _ in range(3):  # the 2nd and 3rd come from the response cache: still counted, same label
                assert (await c.get("/tracks/")).status_code == 200
            assert (await c.get("/xrpc/fm.plyr.feed.getLatest")).status_code == 200
            assert (await c.get("/tracks/999999")).status_code == 404
            assert (await c.get("/audio/bafkreinothere")).status_code == 404
            for _ in range(5):
                await c.get(f"/{uuid.uuid4().hex}/{uuid.uuid4().hex}")
            text = (await c.get("/metrics")).text
    assert count("/tracks/") - before["/tracks/"] == 3
    assert count("/xrpc/fm.plyr.feed.getLatest") - before["/xrpc/fm.plyr.feed.getLatest"] == 1
    assert count("/tracks/{track_id}", status="404") >= 1
    assert count("/audio/{file_id}", status="404") - audio_before == 1
    assert count("<unmatched>", status="404") - junk_before == 5
    assert "appview_http_request_seconds_bucket" in text



async def test_one_request_per_surface_shows_in_metrics_by_template(db_url: str) -> None:
    """Issue 12 item 6: after one request to a REST route, an XRPC route, /audio and a page, /metrics has each
    one's count and latency under its route template; the never-recorded per-XRPC metrics are gone."""
    app = create_app(AppviewSettings(response_cache=False), db_url)
    surfaces = {"/tracks/{track_id}": "/tracks/1", "/xrpc/fm.plyr.feed.getLatest": "/xrpc/fm.plyr.feed.getLatest",
                "/audio/{file_id}": "/audio/bafkreinothere", "/": "/", "/docs": "/docs",
                "/xrpc/fm.plyr.sync.getEvents": "/xrpc/fm.plyr.sync.getEvents"}
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            for path in surfaces.values():
                assert (await c.get(path)).status_code < 500, path
            text = (await c.get("/metrics")).text
    for route in surfaces:
        assert f'appview_http_requests_total{{method="GET",route="{route}",status=' in text, route
        assert f'appview_http_request_seconds_count{{method="GET",route="{route}"}}' in text, route
    assert "appview_xrpc_responses_total" not in text and "appview_xrpc_seconds" not in text
    assert 'appview_db_pool_max{pool="primary"} 10.0' in text
    assert 'appview_db_pool_connections{pool="primary"}' in text and 'appview_db_pool_waiting{pool="primary"}' in text
