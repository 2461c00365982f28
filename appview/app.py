"""create_app(): the read side's composition root (health, readiness, metrics, status)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool

from appview import auth, openapi, xrpc
from appview.cache import ResponseCache
from appview.deps import Conn
from appview.freshness import ProjectionWatcher
from appview.playback import Playback
from appview.rest import artists, errors, lists, stats, tracks
from appview.search.routes import search_router
from appview.settings import AppviewSettings
from appview.status import Status, read_status
from appview.stream import stream_router
from appview.views.xrpc_views import record_views
from appview.xrpc import actor as xrpc_actor
from appview.xrpc import feed as xrpc_feed
from appview.xrpc import track as xrpc_track
from appview.xrpc.plays import router as plays_router
from core.db.urls import libpq_url
from core.lexicon import default_lexicons


def create_app(settings: AppviewSettings, database_url: str) -> FastAPI:
    watcher = ProjectionWatcher(database_url)
    playback = Playback(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(libpq_url(database_url), min_size=1, max_size=settings.db_pool_max,
                                   kwargs={"options": "-c timezone=UTC"}, open=False)
        await pool.open()
        app.state.pool = pool
        watcher.start()
        try:
            yield
        finally:
            await watcher.stop()
            await playback.aclose()
            await pool.close()

    app = FastAPI(title="plyr-appview", lifespan=lifespan)
    app.state.watcher = watcher
    if settings.response_cache:
        app.add_middleware(ResponseCache, watcher=watcher, ttl_s=settings.response_cache_ttl_s,
                           stale_s=settings.response_cache_stale_s)
    errors.install(app)
    for module in (tracks, artists, lists, stats, xrpc_feed, xrpc_track, xrpc_actor):
        app.include_router(module.router)
    app.include_router(playback.router())
    app.include_router(search_router(viewer_of=auth.viewer_did))
    app.include_router(plays_router)
    app.include_router(stream_router(database_url, hydrator=record_views))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(conn: Conn) -> dict[str, str]:
        await conn.execute("SELECT 1")
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/status")
    async def status(conn: Conn) -> Status:
        return await read_status(conn)

    auth.install(app, settings)  # viewer auth: DID resolver + verifier in the lifespan, /.well-known/did.json
    xrpc.install(app, default_lexicons(), validate_output=settings.xrpc_validate_output)  # after all XRPC routes
    openapi.install(app, default_lexicons())  # /openapi.json: every route as served (appview/openapi.py)
    return app
