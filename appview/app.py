"""create_app(): the read side's composition root (health, readiness, metrics, status)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from appview.settings import AppviewSettings
from appview.status import Status, read_status
from appview.stream import stream_router
from core.db.urls import libpq_url


async def _conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[AsyncConnection, Depends(_conn)]


def create_app(settings: AppviewSettings, database_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(libpq_url(database_url), min_size=1, max_size=settings.db_pool_max,
                                   kwargs={"options": "-c timezone=UTC"}, open=False)
        await pool.open()
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="plyr-appview", lifespan=lifespan)
    app.include_router(stream_router(database_url))

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

    return app
