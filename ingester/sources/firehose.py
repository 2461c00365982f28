"""Stage ①: a `com.atproto.sync.subscribeRepos` client — bytes in, resumable cursor out.

A reader task receives frames into a bounded queue (backpressure instead of unbounded memory);
the handler consumes whole batches and commits them with the source cursor. On any disconnect
the reader waits until every received frame is committed, then reconnects from the committed
cursor, so nothing received is lost and nothing is applied twice (the log's dedup key absorbs
the overlap of an inclusive replay).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
import websockets
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from ingester import metrics
from ingester.backoff import pause

log = structlog.get_logger(__name__)

MAX_FRAME_BYTES = 5 * 1024 * 1024  # spec: 5 MB per WebSocket frame
Handler = Callable[[Sequence[bytes]], Awaitable["HandlerResult"]]


@dataclass(frozen=True, slots=True)
class HandlerResult:
    last_seq: int | None
    reset_cursor: bool = False  # the host said FutureCursor: our cursor is not in its seq space


def source_name(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"wss://{url}")
    return f"firehose:{parts.netloc}"


def subscribe_url(url: str, cursor: int | None) -> str:
    base = url if "://" in url else f"wss://{url}"
    base = base.rstrip("/")
    if not base.endswith("/xrpc/com.atproto.sync.subscribeRepos"):
        base += "/xrpc/com.atproto.sync.subscribeRepos"
    return base if cursor is None else f"{base}?cursor={cursor}"


class FirehoseSource:
    def __init__(
        self,
        url: str,
        *,
        cursor: int | None,
        batch_max: int = 2000,
        queue_max: int = 20_000,
        backoff_max_s: float = 60.0,
    ) -> None:
        self.url = url
        self.name = source_name(url)
        self.cursor = cursor  # last committed seq
        self.batch_max = batch_max
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_max)
        self.backoff_max_s = backoff_max_s
        self.connected = asyncio.Event()

    async def run(self, handler: Handler, stop: asyncio.Event) -> None:
        consumer = asyncio.create_task(self._consume(handler, stop), name=f"{self.name}:consume")
        try:
            await self._read(stop)
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)

    async def _read(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            url = await self.connect_url()
            retry_after: float | None = None
            try:
                async with connect(url, max_size=MAX_FRAME_BYTES, open_timeout=10, ping_interval=20,
                                   ping_timeout=30, close_timeout=2, subprotocols=self.subprotocols) as ws:
                    log.info("firehose.connected", source=self.name, cursor=self.cursor)
                    self.connected.set()
                    async for message in ws:
                        attempt = 0
                        if (frame := self.frame(message)) is not None:
                            await self.queue.put(frame)
                        if stop.is_set():
                            break
            except websockets.InvalidStatus as e:
                header = e.response.headers.get("Retry-After")
                retry_after = float(header) if header and header.isdigit() else None
                log.warning("firehose.rejected", source=self.name, status=e.response.status_code)
                self.rejected(e.response.status_code, e.response.body or b"")
            except (OSError, websockets.WebSocketException, TimeoutError) as e:
                log.warning("firehose.disconnected", source=self.name, error=repr(e))
            finally:
                self.connected.clear()
            await self._drained(stop)
            if stop.is_set():
                return
            attempt += 1
            metrics.RECONNECTS.labels(self.name).inc()
            delay = retry_after or min(self.backoff_max_s, 0.5 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1)
            log.info("firehose.reconnecting", source=self.name, cursor=self.cursor, in_s=round(delay, 2))
            await pause(stop, delay)

    # Hooks for sources that speak another wire over the same connect/commit/reconnect loop (Jetstream).
    subprotocols: list[Subprotocol] | None = None

    async def connect_url(self) -> str:
        return subscribe_url(self.url, self.cursor)

    def frame(self, message: str | bytes) -> bytes | None:
        """The queued form of one websocket message, or None to ignore it (the firehose is binary only)."""
        return message if isinstance(message, bytes) else None

    def rejected(self, status: int, body: bytes) -> None:
        """The host refused the upgrade (before any frame): a chance to fix the next attempt's URL."""

    async def _drained(self, stop: asyncio.Event) -> None:
        """Wait until the consumer committed every frame we received (so the cursor is exact)."""
        joined = asyncio.create_task(self.queue.join())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({joined, stopped}, return_when=asyncio.FIRST_COMPLETED)
        joined.cancel()
        stopped.cancel()

    async def _consume(self, handler: Handler, stop: asyncio.Event) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.batch_max and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            delay = 0.5
            while True:
                try:
                    result = await handler(batch)
                    break
                except Exception:
                    # Never drop a batch we could not commit (database down, …): retry it with
                    # backoff; the bounded queue holds the socket back meanwhile.
                    log.exception("firehose.batch_failed", source=self.name, frames=len(batch))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
            if result.last_seq is not None:
                self.cursor = result.last_seq
            if result.reset_cursor:
                log.error("firehose.cursor_reset", source=self.name, old_cursor=self.cursor)
                self.cursor = None
            for _ in batch:
                self.queue.task_done()
