"""create_app(): the read side's composition root (health, readiness, metrics, status)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

from appview import auth, cors, openapi, xrpc
from appview.cache import ResponseCache
from appview.deps import PrimaryConn
from appview.freshness import ProjectionWatcher
from appview.health import health_router
from appview.http_metrics import HttpMetrics
from appview.listener import Listener
from appview.log_metrics import refresh_log_metrics
from appview.metrics_endpoint import exposition
from appview.pages import docs
from appview.pages.status_data import PlayabilityCache
from appview.pages.status_page import status_page_router
from appview.playback import Playback
from appview.pools import PoolGauges, make_pool
from appview.reads import Reads
from appview.rest import artists, errors, list_links, lists, meta, stats, tags, tracks
from appview.search.routes import search_router
from appview.settings import AppviewSettings
from appview.status import Status, read_status
from appview.stream import stream_router
from appview.views.xrpc_views import record_views
from appview.xrpc import actor as xrpc_actor
from appview.xrpc import feed as xrpc_feed
from appview.xrpc import track as xrpc_track
from appview.xrpc.plays import router as plays_router
from core.lexicon import default_lexicons


def create_app(settings: AppviewSettings, database_url: str) -> FastAPI:
    # One LISTEN session per process (appview/listener.py): never through a transaction-mode pooler.
    listener = Listener(settings.database_listen_url or database_url)
    watcher = ProjectionWatcher(listener)
    gauges = PoolGauges()
    playback = Playback(settings)
    playability = PlayabilityCache()  # the status page's background count
    reads = Reads(watcher, settings)  # where requests read: DATABASE_READ_URL's replicas, else the primary

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = make_pool(database_url, settings, "primary")
        await pool.open()
        app.state.pool = pool
        gauges.add("primary", pool)
        gauges.start()
        listener.start()
        reads.start(lambda: app.state.pool)
        gauges.add_provider(lambda: {r.name: r.pool for r in reads.replicas})
        try:
            yield
        finally:
            await reads.stop()
            await listener.stop()
            await gauges.stop()
            await playability.aclose()
            await playback.aclose()
            await pool.close()

    # /docs is ours (appview/pages/docs.py): FastAPI's defaults load Swagger UI and ReDoc from CDNs.
    app = FastAPI(title="plyr-appview", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.watcher = watcher
    app.state.reads = reads
    app.state.listener = listener
    app.state.pool_gauges = gauges  # the primary pool, and each read replica's under its name
    app.state.metrics_collectors = []  # with several workers: collectors outside the shared files (cli)
    app.state.contact_email = settings.contact_email
    app.state.audio_hosts = settings.allowed_audio_hosts
    if settings.response_cache:
        app.add_middleware(ResponseCache, position_of=reads.position, ttl_s=settings.response_cache_ttl_s,
                           stale_s=settings.response_cache_stale_s)
    app.add_middleware(HttpMetrics)  # outside the cache: cached answers are counted too
    errors.install(app)
    # tags before tracks: `/tracks/{track_id}` would otherwise take `/tracks/tags`.
    for module in (tags, tracks, artists, lists, list_links, stats, meta, xrpc_feed, xrpc_track, xrpc_actor):
        app.include_router(module.router)
    app.include_router(playback.router())
    app.include_router(search_router(viewer_of=auth.viewer_did))
    app.include_router(plays_router)
    app.include_router(stream_router(database_url, hydrator=record_views, listener=listener))

    app.include_router(status_page_router(playability))  # `/`: the human-readable status page
    docs.install(app)
    app.include_router(health_router(settings))  # /health, /ready

    @app.get("/metrics")
    async def metrics() -> Response:
        await refresh_log_metrics(app.state.pool)
        return Response(exposition(app.state.metrics_collectors), media_type=CONTENT_TYPE_LATEST)

    @app.get("/status")
    async def status(conn: PrimaryConn) -> Status:
        return (await read_status(conn)).model_copy(update={"replicas": reads.status()})

    auth.install(app, settings)  # viewer auth: DID resolver + verifier in the lifespan, /.well-known/did.json
    xrpc.install(app, default_lexicons(), validate_output=settings.xrpc_validate_output)  # after all XRPC routes
    cors.install(app, settings.cors_origins)  # the last middleware added is the outermost: it wraps the cache
    openapi.install(app, default_lexicons())  # /openapi.json: every route as served (appview/openapi.py)
    return app
