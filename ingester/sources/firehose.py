"""Stage ①: a `com.atproto.sync.subscribeRepos` client — bytes in, resumable cursor out.

A reader task receives frames into a queue bounded in bytes (`ingester.sources.budget`: backpressure on
the socket instead of unbounded memory); the handler consumes whole batches and commits them with the
source cursor. On any disconnect the reader waits until every received frame is committed, then
reconnects from the committed cursor, so nothing received is lost and nothing is applied twice (the
log's dedup key absorbs the overlap of an inclusive replay).

Isolation: the handler turns any bad frame into a recorded reject (see `ingester.pipeline.isolation`),
so only infrastructure errors (database gone) reach `_consume`, which retries them with backoff. A
message over the frame limit makes the websocket library close the connection (1009) before we read
it, and a reconnect from the same cursor would meet it again: the second time in a row from the same
cursor, we skip past it (see `_too_big`), which costs one reject, not a loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import structlog
import websockets
from websockets.asyncio.client import connect
from websockets.frames import CloseCode
from websockets.typing import Subprotocol

from core.retry import Backoff, pause
from ingester import metrics
from ingester.sources.budget import DEFAULT_BUDGET, ByteQueue
from ingester.sources.envelope import Reject, SeqGuard

log = structlog.get_logger(__name__)

MAX_FRAME_BYTES = 5 * 1024 * 1024  # spec: 5 MB per WebSocket frame
WS_BUFFERED_MESSAGES = 4  # the websocket library's own read buffer (in messages), outside our byte budget
BATCH_ATTEMPTS = 5  # a non-infrastructure error escaping the handler is a bug: give up on the batch then
TRANSIENT = (psycopg.OperationalError, OSError)  # the database went away: retried, never a reject
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
        queue_bytes: int = DEFAULT_BUDGET,
        backoff_max_s: float = 60.0,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        guard: SeqGuard | None = None,
        frame_seq: Callable[[bytes], int | None] | None = None,
    ) -> None:
        self.url = url
        self.name = source_name(url)
        # Reads a frame's seq without raising (the service passes the decoder's; sources never import it).
        self._frame_seq = frame_seq
        self.cursor = cursor  # last committed seq
        # Started at the live tip, nothing committed yet: just before the first frame received. A reconnect or a
        # restart of the component resumes there, not at a later tip: frames received but not yet committed when
        # the connection or the reader died are asked for again.
        self.floor: int | None = None
        self.batch_max = batch_max
        self.queue = ByteQueue(queue_bytes)
        self.backoff_max_s = backoff_max_s
        self.max_frame_bytes = max_frame_bytes
        # Shared with the pipeline, which judges every frame's seq against it.
        self.guard = guard if guard is not None else SeqGuard(self.name, cursor)
        self.connected = asyncio.Event()
        self._wall: int | None = None  # the cursor from which a too-big message closed the connection
        self._skip = 0  # how far past `_wall` the last skip went (doubles while the wall is still there)

    async def run(self, handler: Handler, stop: asyncio.Event) -> None:
        consumer = asyncio.create_task(self._consume(handler, stop), name=f"{self.name}:consume")
        try:
            await self._read(stop)
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)

    async def _read(self, stop: asyncio.Event) -> None:
        backoff = Backoff(cap_s=self.backoff_max_s)
        while not stop.is_set():
            url = await self.connect_url()
            retry_after: float | None = None
            too_big = False
            try:
                async with connect(url, max_size=self.max_frame_bytes, max_queue=WS_BUFFERED_MESSAGES,
                                   open_timeout=10, ping_interval=20, ping_timeout=30, close_timeout=2,
                                   subprotocols=self.subprotocols) as ws:
                    log.info("firehose.connected", source=self.name, cursor=self.resume)
                    self.guard.connected(self.resume)
                    self.connected.set()
                    async for message in ws:
                        backoff.reset()
                        if self.cursor is None and self.floor is None and (first := self.seq_of(message)) is not None:
                            self.floor = first - 1  # before `frame`: a frame that kills the reader is read again
                        if (frame := self.frame(message)) is not None:
                            await self.queue.put(frame)
                            metrics.QUEUE_BYTES.labels(self.name).set(self.queue.held)
                        if stop.is_set():
                            break
            except websockets.InvalidStatus as e:
                header = e.response.headers.get("Retry-After")
                retry_after = float(header) if header and header.isdigit() else None
                log.warning("firehose.rejected", source=self.name, status=e.response.status_code)
                self.rejected(e.response.status_code, bytes(e.response.body or b""))
            except websockets.ConnectionClosedError as e:
                too_big = e.sent is not None and e.sent.code == CloseCode.MESSAGE_TOO_BIG
                log.warning("firehose.disconnected", source=self.name, error=repr(e), too_big=too_big)
            except (OSError, websockets.WebSocketException, TimeoutError) as e:
                log.warning("firehose.disconnected", source=self.name, error=repr(e))
            finally:
                self.connected.clear()
            await self._drained(stop)
            if stop.is_set():
                return
            if too_big:
                self._too_big()
            elif self._wall is not None and self.cursor is not None and self.cursor > self._wall + self._skip:
                self._wall, self._skip = None, 0  # frames past the wall were committed: it is behind us
            metrics.RECONNECTS.labels(self.name).inc()
            delay = backoff.next_delay(retry_after)
            log.info("firehose.reconnecting", source=self.name, cursor=self.cursor, in_s=round(delay, 2))
            await pause(stop, delay)

    def _too_big(self) -> None:
        """A message over `max_frame_bytes` closed the connection (1009) right after `self.cursor`.

        The first time, we just reconnect (the host may not replay it). The same wall from the same
        cursor again means a replay will always hit it: skip past it — with the cursor one past the
        last seq we committed (two for a host that replays its cursor inclusively), doubling the step
        while the wall is still there (seq gaps) — and set the skipped range aside as one reject.
        """
        cursor, at = self.cursor, self._wall
        if cursor is None:
            return  # from the live tip a reconnect does not replay it
        if at is None or cursor != at + self._skip:
            self._wall, self._skip = cursor, 0
            log.warning("firehose.message_too_big", source=self.name, after_seq=cursor, limit=self.max_frame_bytes)
            return
        inclusive = self.guard.inclusive  # the host sends the frame at our cursor again: one more to skip
        step = (2 if inclusive else 1) if self._skip == 0 else self._skip
        target = min(cursor + step, 2**63 - 1)
        reason = (f"message over {self.max_frame_bytes} bytes after seq {at}: closed by the websocket layer "
                  f"before reading (1009) twice; skipped seqs {cursor + 1}..{target - 1 if inclusive else target}")
        log.error("firehose.skipped_too_big", source=self.name, after_seq=at, skipped_to=target)
        self.guard.set_aside(Reject.of(self.name, None, "too_big", reason, seq=cursor + 1,
                                       size=self.max_frame_bytes + 1), target)
        self._skip = target - at
        self.cursor = target

    # Hooks for sources that speak another wire over the same connect/commit/reconnect loop (Jetstream).
    subprotocols: list[Subprotocol] | None = None

    @property
    def resume(self) -> int | None:
        """Where the next connection starts: the committed cursor, else the floor, else the live tip."""
        return self.cursor if self.cursor is not None else self.floor

    def seq_of(self, message: str | bytes) -> int | None:
        return self._frame_seq(message) if isinstance(message, bytes) and self._frame_seq is not None else None

    async def connect_url(self) -> str:
        return subscribe_url(self.url, self.resume)

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
        backoff = Backoff()
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.batch_max and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            result: HandlerResult | None = None
            failures = 0
            while result is None:
                try:
                    result = await handler(batch)
                except TRANSIENT as e:
                    # Database down, connection lost: never a reject, never dropped. The spent byte budget
                    # holds the socket back meanwhile.
                    log.warning("firehose.batch_retry", source=self.name, frames=len(batch), error=repr(e))
                    await backoff.wait(stop)
                    if stop.is_set():  # shutting down (or deposed: every retry is fenced): resumed from the cursor
                        return
                except Exception:
                    # The handler sets bad frames aside itself; reaching here is a bug in that path.
                    failures += 1
                    log.exception("firehose.batch_failed", source=self.name, frames=len(batch), attempt=failures)
                    if failures >= BATCH_ATTEMPTS:
                        log.error("firehose.batch_dropped", source=self.name, frames=len(batch))
                        break
                    await backoff.wait(stop)
            backoff.reset()
            if result is not None and result.last_seq is not None:
                self.cursor = result.last_seq
            if result is not None and result.reset_cursor:
                log.error("firehose.cursor_reset", source=self.name, old_cursor=self.cursor)
                self.cursor = self.floor = None
            await self.queue.done(batch)
            metrics.QUEUE_BYTES.labels(self.name).set(self.queue.held)

