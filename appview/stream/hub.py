"""Woken by the process's one LISTEN connection (appview/listener.py), fanning new log events out to every
live subscriber.

Ordering rests on the appenders' contract (ingester/eventlog/append.py): they hold
`LOG_APPEND_LOCK` from drawing seqs until commit, and Postgres makes a commit visible before it
releases a transaction's locks, so once seq N is visible no seq < N can commit later. The hub can
therefore keep one `head` and read `seq > head`; every subscriber registered at head H receives
exactly the events > H, in order (`register` and the fan-out never interleave: both run without
an `await` between reading/advancing `head` and touching the subscriber queues).

Each subscriber has a bounded buffer: when the hub would overfill it, the subscriber is marked
too slow and its connection is closed with `ConsumerTooSlow`; memory never grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import structlog
from prometheus_client import Counter, Gauge
from psycopg_pool import AsyncConnectionPool

from appview.listener import Listener
from appview.stream.log import ALL_EVENTS, StreamEvent, log_head, read_page
from appview.stream.params import EventFilter
from core.db.connect import NOTIFY_CHANNEL
from core.retry import Backoff

log = structlog.get_logger(__name__)

# Several API workers (prometheus multiprocess mode): a scrape sums the live workers' subscribers, and shows the
# highest head any of them reached.
SUBSCRIBERS = Gauge("stream_subscribers", "Live outbound-stream subscribers", multiprocess_mode="livesum")
TOO_SLOW = Counter("stream_consumer_too_slow_total", "Subscribers disconnected for falling behind")
HUB_HEAD = Gauge("stream_hub_head", "Highest log seq the outbound hub has fanned out", multiprocess_mode="livemax")


class Subscription:
    """The hub's side of one consumer: a bounded FIFO of matching events."""

    def __init__(self, f: EventFilter, max_buffer: int) -> None:
        self.filter, self.max_buffer = f, max_buffer
        self.buffer: deque[StreamEvent] = deque()
        self.ready = asyncio.Event()  # buffer non-empty, or too slow
        self.too_slow = asyncio.Event()

    def offer(self, events: list[StreamEvent]) -> None:
        if self.too_slow.is_set():
            return
        matching = [e for e in events if e.matches(self.filter)]
        if not matching:
            return
        if len(self.buffer) + len(matching) > self.max_buffer:
            self.buffer.clear()
            TOO_SLOW.inc()
            self.too_slow.set()
        else:
            self.buffer.extend(matching)
        self.ready.set()

    def take(self) -> list[StreamEvent]:
        events = list(self.buffer)
        self.buffer.clear()
        self.ready.clear()
        return events


class LogHub:
    def __init__(self, listener: Listener, *, page_size: int = 2000, poll_interval: float = 1.0) -> None:
        # Built before the listener starts (it LISTENs the channels registered by then); the pool comes at `start`.
        # `poll_interval`: a safety net for a lost notification (e.g. across a listener reconnect).
        self.page_size, self.poll_interval = page_size, poll_interval
        self.pool: AsyncConnectionPool | None = None
        self._wake = asyncio.Event()
        listener.listen(NOTIFY_CHANNEL, lambda _payload: self._wake.set())
        listener.on_connect.append(self._reconnected)
        self.head = 0
        self.subscribers: set[Subscription] = set()
        self.wakeups = 0  # refreshes that moved the head (tests wait on it)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        async with pool.connection() as conn:
            self.head = await log_head(conn)
        HUB_HEAD.set(self.head)
        self._task = asyncio.create_task(self._run(), name="stream-hub")

    async def stop(self) -> None:
        # The flag as well as the cancel: a cancel that lands inside a pool checkout can be absorbed there, and
        # the loop must still end (at the latest one poll interval later).
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def register(self, sub: Subscription) -> int:
        """Start fanning out to `sub`; it will receive every event with seq > the returned head."""
        self.subscribers.add(sub)
        SUBSCRIBERS.set(len(self.subscribers))
        return self.head

    def unregister(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)
        SUBSCRIBERS.set(len(self.subscribers))

    async def _reconnected(self, _conn: object) -> None:
        self._wake.set()  # catch up on whatever was committed while the listener was away

    async def _run(self) -> None:
        backoff = Backoff()
        while not self._stopping:
            try:
                self._wake.clear()
                await self.refresh()
                backoff.reset()
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands as the wake-up
                # fires (a NOTIFY during shutdown), and `stop` then waits on this loop forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff.next_delay()
                log.exception("stream.hub_failed", retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)

    async def refresh(self) -> None:
        """Advance `head` to the log's head, handing every new event to the subscribers."""
        before = self.head
        assert self.pool is not None, "refresh before start"
        if not self.subscribers:
            async with self.pool.connection() as conn:
                head = await log_head(conn)
            if not self.subscribers:  # nobody registered meanwhile: no events to hand out
                self.head = max(self.head, head)
        while self.subscribers:
            async with self.pool.connection() as conn:
                # Bound the read by a head read first: the two tables are read by two statements,
                # each with its own snapshot, and a batch committing between them must not let a
                # repo event above it push our head past its records.
                upto = await log_head(conn)
                events, covered = await read_page(conn, self.head, upto, ALL_EVENTS, self.page_size)
            if covered <= self.head:
                break
            self.head = covered
            for sub in list(self.subscribers):
                sub.offer(events)
        if self.head != before:
            self.wakeups += 1
            HUB_HEAD.set(self.head)
