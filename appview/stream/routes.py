"""The `fm.plyr.sync.*` XRPC methods: the outbound stream, its paged twin, record history and as-of.

`stream_router()` is the factory the app includes; its lifespan runs the process's one log hub
(a LISTEN connection) on the app's connection pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import Response

from appview.stream.history import record_as_of, record_history, resolve_key
from appview.stream.hub import LogHub
from appview.stream.log import log_head, read_page, retention_floor
from appview.stream.params import (
    XrpcError,
    bad,
    parse_bool,
    parse_cursor,
    parse_datetime,
    parse_filter,
    parse_limit,
    parse_record_uri,
    parse_tid,
    reject_unknown,
)
from appview.stream.subscribe import EventSender, Hydrator, StreamConfig, check_cursor, serve_subscription

NS = "fm.plyr.sync"
_FILTERS = ("collections", "dids", "kinds", "includeRejected", "hydrate")
SUBSCRIBE_PARAMS = ("cursor", *_FILTERS)
GET_EVENTS_PARAMS = ("cursor", "limit", *_FILTERS)
MAX_EVENTS_PAGE = 1000
MAX_HISTORY_PAGE = 1000


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(e: XrpcError) -> Response:
    return json_response(e.body(), e.status)


def stream_router(database_url: str, *, hydrator: Hydrator | None = None,
                  config: StreamConfig | None = None) -> APIRouter:
    """Routes under /xrpc/fm.plyr.sync.*; `hydrator` (uri list -> views) enables `hydrate=true`."""
    config = config or StreamConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = LogHub(database_url, app.state.pool, page_size=config.page_size)
        await hub.start()
        app.state.stream_hub = hub
        try:
            yield
        finally:
            await hub.stop()

    router = APIRouter(lifespan=lifespan)

    def sender(app: Any, hydrate: bool) -> EventSender:
        if hydrate and hydrator is None:
            raise bad("hydrate: this server has no hydrator configured")
        return EventSender(app.state.pool, hydrator if hydrate else None, config)

    @router.websocket(f"/xrpc/{NS}.subscribeEvents")
    async def subscribe_events(ws: WebSocket) -> None:
        await ws.accept()
        hub: LogHub = ws.app.state.stream_hub
        try:
            reject_unknown(ws.query_params, SUBSCRIBE_PARAMS)
            f = parse_filter(ws.query_params)
            cursor = parse_cursor(ws.query_params)
            events = sender(ws.app, parse_bool(ws.query_params, "hydrate", False))
            if cursor is not None:
                async with ws.app.state.pool.connection() as conn:
                    await check_cursor(conn, cursor, outdated_is_error=False)  # outdated: #info, then replay
        except XrpcError as e:
            await ws.send_text(orjson.dumps({"kind": "error", **e.body()}).decode())
            await ws.close(code=1008, reason=e.error)
            return
        await serve_subscription(ws, hub, events, config, f, cursor)

    @router.get(f"/xrpc/{NS}.getEvents")
    async def get_events(request: Request) -> Response:
        try:
            reject_unknown(request.query_params, GET_EVENTS_PARAMS)
            f = parse_filter(request.query_params)
            cursor = parse_cursor(request.query_params)
            limit = parse_limit(request.query_params, 100, MAX_EVENTS_PAGE)
            events_sender = sender(request.app, parse_bool(request.query_params, "hydrate", False))
            async with request.app.state.pool.connection() as conn:
                if cursor is None:  # no cursor: from the oldest event retained
                    cursor = await retention_floor(conn)
                await check_cursor(conn, cursor)
                head = await log_head(conn)
                events, covered = await read_page(conn, cursor, head, f, limit)
                await check_cursor(conn, cursor)  # again: a trim that ran meanwhile is an error, never a gap
            frames = await events_sender.frames(events)
        except XrpcError as e:
            return error_response(e)
        # Frames are already JSON: splice them rather than parse and re-encode.
        body = b'{"cursor":"%d","events":[%s]}' % (covered, ",".join(frames).encode())
        return Response(body, media_type="application/json")

    @router.get(f"/xrpc/{NS}.getRecordHistory")
    async def get_record_history(request: Request) -> Response:
        try:
            reject_unknown(request.query_params, ("uri", "cursor", "limit"))
            uri = parse_record_uri(request.query_params)
            after = parse_cursor(request.query_params) or 0
            limit = parse_limit(request.query_params, 100, MAX_HISTORY_PAGE)
            async with request.app.state.pool.connection() as conn:
                return json_response(await record_history(conn, await resolve_key(conn, uri), after, limit))
        except XrpcError as e:
            return error_response(e)

    @router.get(f"/xrpc/{NS}.getRecordAsOf")
    async def get_record_as_of(request: Request) -> Response:
        try:
            reject_unknown(request.query_params, ("uri", "rev", "at", "includeUnverified"))
            uri = parse_record_uri(request.query_params)
            rev = parse_tid(request.query_params, "rev")
            at = parse_datetime(request.query_params, "at")
            if rev is not None and at is not None:
                raise bad("give either rev or at, not both")
            include_unverified = parse_bool(request.query_params, "includeUnverified", False)
            async with request.app.state.pool.connection() as conn:
                key = await resolve_key(conn, uri)
                return json_response(await record_as_of(conn, key, rev=rev, at=at,
                                                        include_unverified=include_unverified))
        except XrpcError as e:
            return error_response(e)

    return router
