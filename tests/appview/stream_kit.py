"""A real uvicorn server running the stream routes, and a websocket consumer that records frames."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from appview.stream import Hydrator, StreamConfig, stream_router
from core.db.urls import libpq_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream_app(db_url: str, *, hydrator: Hydrator | None = None, config: StreamConfig | None = None) -> FastAPI:
    """The app's pool lifespan (as appview/app.py has it) plus the stream router."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(libpq_url(db_url), min_size=1, max_size=12,
                                   kwargs={"options": "-c timezone=UTC"}, open=False)
        await pool.open()
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan)
    app.include_router(stream_router(db_url, hydrator=hydrator, config=config))
    return app


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` on a free port; yields its base URL (http://127.0.0.1:port)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="auto", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)


def ws_url(base: str, **params: Any) -> str:
    from urllib.parse import urlencode

    query = urlencode([(k, v) for k, vs in params.items() for v in (vs if isinstance(vs, list) else [vs])])
    return base.replace("http://", "ws://") + "/xrpc/fm.plyr.sync.subscribeEvents" + (f"?{query}" if query else "")


@asynccontextmanager
async def subscribe(base: str, *, rcvbuf: int | None = None, **params: Any) -> AsyncIterator[ClientConnection]:
    """`rcvbuf`: a small, fixed kernel receive buffer (no autotuning), so a consumer that stops
    reading pushes back on the server within a few hundred KB."""
    extra: dict[str, Any] = {}
    if rcvbuf is not None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        host, port = base.removeprefix("http://").split(":")
        sock.connect((host, int(port)))
        sock.setblocking(False)
        extra = {"sock": sock, "max_queue": 1}
    async with connect(ws_url(base, **params), max_size=None, open_timeout=10, **extra) as ws:
        yield ws


async def read_frames(ws: ClientConnection, n: int, timeout: float = 20.0, *,
                      strict: bool = True) -> list[dict[str, Any]]:
    """The next `n` frames (fewer if the server closes first, or if `strict` is off and `timeout` passes)."""
    out: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < n:
                out.append(orjson.loads(await ws.recv()))
    except ConnectionClosed:
        pass
    except TimeoutError:
        if strict:
            raise
    return out


async def read_until_closed(ws: ClientConnection, timeout: float = 20.0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                out.append(orjson.loads(await ws.recv()))
    return out
