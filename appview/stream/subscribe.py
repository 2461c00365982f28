"""`fm.plyr.sync.subscribeEvents`: replay the log from a cursor, then cut over to live.

Cursor contract: `cursor` is the seq of the last event the consumer has processed (exclusive,
as in `com.atproto.sync.subscribeRepos`): the stream starts with the first event whose seq is
greater. `cursor=0` replays everything retained; no cursor starts at the live head.

Cutover without gap or duplicate: replay pages straight from Postgres (seq > cursor, up to the
hub's head) until a page is not full; then register with the hub, which returns its head H and
from then on buffers every event > H; replay the remaining (cursor, H] from Postgres; then drain
the buffer, skipping anything ≤ cursor (the hub may lag a direct read).

Errors are frames `{"kind": "error", "error": …, "message": …}` followed by a close (code 1008 for
the consumer's fault, 1011 for ours), the atproto event-stream convention. A cursor older than the
retained log (LOG_RETENTION) is not an error (atproto event streams, as the PDS does): the first frame
is `{"kind": "info", "name": "OutdatedCursor", "message": …, "oldest": floor}`, then the stream goes on
from the oldest retained event; the same happens if retention passes a consumer still replaying.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from prometheus_client import Counter
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from starlette.websockets import WebSocket, WebSocketDisconnect

from appview.stream.hub import LogHub, Subscription
from appview.stream.log import StreamEvent, log_head, read_page, retention_floor
from appview.stream.params import EventFilter, XrpcError

log = structlog.get_logger(__name__)

FRAMES_SENT = Counter("stream_frames_sent_total", "Event frames sent to outbound-stream subscribers", ["phase"])

# uri -> hydrated view; URIs it knows nothing about are simply absent from the result.
Hydrator = Callable[[AsyncConnection, list[str]], Awaitable[dict[str, dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    page_size: int = 1000  # events per replay read
    max_buffer: int = 10_000  # live events buffered per subscriber before ConsumerTooSlow
    error_send_timeout: float = 5.0  # how long a too-slow consumer gets to take its error frame
    hydrate_wait: float = 2.0  # how long hydration waits for the projector to reach a frame


async def check_cursor(conn: AsyncConnection, cursor: int, *, outdated_is_error: bool = True) -> None:
    """FutureCursor, and (for getEvents, whose pages cannot carry an #info) OutdatedCursor."""
    floor = await retention_floor(conn) if outdated_is_error else 0
    if cursor < floor:
        raise XrpcError("OutdatedCursor", f"cursor {cursor} is older than the retained log; the oldest "
                        f"usable cursor is {floor}", oldest=floor)
    head = await log_head(conn)
    if cursor > head:
        raise XrpcError("FutureCursor", f"cursor {cursor} is ahead of the log head {head}", head=head)


class EventSender:
    """Turns pages of events into frames, hydrating commits when asked."""

    def __init__(self, pool: AsyncConnectionPool, hydrator: Hydrator | None, config: StreamConfig) -> None:
        self.pool, self.hydrator, self.config = pool, hydrator, config

    async def frames(self, events: list[StreamEvent]) -> list[str]:
        if self.hydrator is None:
            return [e.frame() for e in events]
        uris = [u for e in events if (u := e.uri) is not None]
        views: dict[str, dict[str, Any]] = {}
        if uris:
            await self._wait_for_projection(events[-1].seq)
            async with self.pool.connection() as conn:
                views = await self.hydrator(conn, uris)
        return [e.hydrated_frame(views.get(e.uri)) if e.uri is not None else e.frame() for e in events]

    async def _wait_for_projection(self, seq: int) -> None:
        """Views come from projections: give the projector a moment to fold `seq` (bounded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.hydrate_wait
        while True:
            async with self.pool.connection() as conn:
                cur = await conn.execute("SELECT position FROM projection_cursor WHERE name = 'main'")
                row = await cur.fetchone()
            if (row is not None and row[0] >= seq) or loop.time() >= deadline:
                return
            await asyncio.sleep(0.02)


async def serve_subscription(ws: WebSocket, hub: LogHub, sender: EventSender, config: StreamConfig,
                             f: EventFilter, cursor: int | None) -> None:
    """Run one accepted subscription until the consumer leaves or must be cut off."""
    sub = Subscription(f, config.max_buffer)
    pump = asyncio.create_task(_pump(ws, hub, sender, config, sub, cursor))
    listen = asyncio.create_task(_until_disconnect(ws))
    slow = asyncio.create_task(sub.too_slow.wait())
    try:
        done, _ = await asyncio.wait({pump, listen, slow}, return_when=asyncio.FIRST_COMPLETED)
        if listen in done:
            return
        if slow in done:
            pump.cancel()
            await _close_with(ws, "ConsumerTooSlow", f"more than {config.max_buffer} live events waited for "
                              "this consumer; reconnect with the cursor of the last event processed",
                              config.error_send_timeout)
            return
        error = pump.exception()
        if isinstance(error, XrpcError):
            await _close_with(ws, error.error, error.message, config.error_send_timeout)
        elif isinstance(error, WebSocketDisconnect | OSError):
            return
        elif error is not None:
            log.error("stream.subscription_failed", error=repr(error))
            await _close_with(ws, "InternalError", "the stream failed; reconnect with your cursor",
                              config.error_send_timeout, code=1011)
    finally:
        hub.unregister(sub)
        for task in (pump, listen, slow):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(pump, listen, slow, return_exceptions=True)


async def _pump(ws: WebSocket, hub: LogHub, sender: EventSender, config: StreamConfig,
                sub: Subscription, cursor: int | None) -> None:
    if cursor is None:
        cursor = hub.register(sub)
    else:
        registered_at: int | None = None
        while registered_at is None or cursor < registered_at:
            upto = hub.head if registered_at is None else registered_at
            if cursor < upto:
                async with sender.pool.connection() as conn:
                    events, covered = await read_page(conn, cursor, upto, sub.filter, config.page_size)
                    # Read after the page: a trim commits its drop and the floor together, so a page that
                    # missed dropped rows is always followed by a floor above the cursor (then re-read).
                    floor = await retention_floor(conn)
                if cursor < floor:
                    await _send_info(ws, "OutdatedCursor", "the cursor is older than the retained log (events "
                                     f"up to seq {floor} were dropped); continuing from the oldest retained event",
                                     oldest=floor)
                    cursor = floor
                    continue
                await _send(ws, sender, events, "replay")
                cursor = covered
                if len(events) == config.page_size:
                    continue  # far behind: keep replaying before asking the hub to buffer
            if registered_at is None:
                registered_at = hub.register(sub)
    while True:
        await sub.ready.wait()
        events = [e for e in sub.take() if e.seq > cursor]
        if events:
            await _send(ws, sender, events, "live")
            cursor = events[-1].seq


async def _send(ws: WebSocket, sender: EventSender, events: list[StreamEvent], phase: str) -> None:
    if not events:
        return
    for frame in await sender.frames(events):
        await ws.send_text(frame)
    FRAMES_SENT.labels(phase).inc(len(events))


async def _send_info(ws: WebSocket, name: str, message: str, **extra: Any) -> None:
    await ws.send_text(orjson.dumps({"kind": "info", "name": name, "message": message, **extra}).decode())


async def _until_disconnect(ws: WebSocket) -> None:
    """Consume client frames (they carry nothing we act on) until the consumer disconnects."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _close_with(ws: WebSocket, error: str, message: str, wait_s: float, code: int = 1008) -> None:
    frame = orjson.dumps({"kind": "error", "error": error, "message": message}).decode()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.send_text(frame), wait_s)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code=code, reason=error), wait_s)
