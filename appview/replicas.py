"""Read replicas (`DATABASE_READ_URL`): each one's health, projector position and replay lag, watched in the
background; a replica's connection pool exists only while the replica answers.

A hot standby cannot LISTEN (NOTIFY is not replicated), so a replica's projector position is polled on a
dedicated connection: every `poll_s`, and at once (then backing off) while the primary's position — pushed by
the ProjectionWatcher — is ahead of it. A polled position is never newer than the replica's data: replay only
moves forward, so everything read from the replica after the poll is at least that new (appview/reads.py keys
the response cache on it).

Lag is measured against the primary: bytes = the primary's WAL position minus the replica's replay position;
seconds = how long ago we first saw the primary write WAL the replica has not replayed yet (0 when it has
replayed everything we saw). Unlike `now() - pg_last_xact_replay_timestamp()` this stays 0 on an idle,
caught-up primary and does not read 0 when the standby has stopped receiving."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import psycopg
import structlog
from prometheus_client import Gauge
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.db.urls import libpq_url

log = structlog.get_logger(__name__)

UP = Gauge("appview_replica_up", "1 while the read replica answers and is in use (0: down or too far behind)",
           ["replica"])
LAG_SECONDS = Gauge("appview_replica_lag_seconds", "Read replica replay lag: how long ago the primary wrote the "
                    "oldest WAL the replica has not replayed (0 when caught up)", ["replica"])
LAG_BYTES = Gauge("appview_replica_lag_bytes", "Read replica replay lag in WAL bytes behind the primary",
                  ["replica"])
LAG_EVENTS = Gauge("appview_replica_lag_events", "Log events the replica's projector position is behind the "
                   "primary's", ["replica"])

FAST_POLL_S = 0.02  # first re-poll once the primary is seen ahead; doubles up to poll_s while no progress
NAP_S = 0.05  # how often a sleeping poller looks whether the primary moved
MAX_SAMPLES = 4096  # primary WAL positions remembered (only changes are kept)
_POLL = ("SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8,"
         " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,"
         " (SELECT coalesce(max(position), 0) FROM projection_cursor)")
_PRIMARY = ("SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8 END,"
            " (SELECT coalesce(max(position), 0) FROM projection_cursor)")
DB_ERRORS = (psycopg.Error, OSError, TimeoutError, PoolTimeout)


def host_of(url: str) -> str:
    """`host:port/db` for logs (never the credentials)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "?"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


def short_error(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}"[:200] if text else type(e).__name__


@dataclass(eq=False)
class Replica:
    name: str  # replica-N, in DATABASE_READ_URL order: shown publicly instead of the host
    url: str
    pool: AsyncConnectionPool | None = None  # only while it answers
    up: bool = False
    serving: bool = False  # up and not too far behind: requests may be sent here
    error: str | None = "not checked yet"
    in_recovery: bool | None = None
    paused: bool | None = None
    position: int | None = None  # projector position as of the last poll (never newer than its data)
    replay_lsn: int | None = None
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    lag_events: int | None = None
    pool_broken: bool = False  # a request could not get a connection: rebuild the pool before using it again
    since: float = field(default_factory=time.monotonic)

    def fail(self, e: BaseException, *, by: str) -> None:
        """Take the replica out of use (its poller brings it back once it answers again)."""
        if self.up:
            log.warning("replicas.down", replica=self.name, host=host_of(self.url), error=short_error(e), by=by,
                        reads="go to the other replicas, or the primary")
        self.up = self.serving = False
        self.pool_broken = True
        self.error = short_error(e)
        UP.labels(self.name).set(0)


@dataclass
class _Sample:
    lsn: int
    at: float  # monotonic time we first saw the primary at this WAL position


class ReplicaMonitor:
    def __init__(self, urls: list[str], *, pool_max: int, poll_s: float, timeout_s: float, max_lag_s: float,
                 primary_position: Callable[[], int | None],
                 configure: Callable[[psycopg.AsyncConnection], Awaitable[None]] | None = None) -> None:
        self.replicas = [Replica(f"replica-{i + 1}", libpq_url(u)) for i, u in enumerate(urls)]
        self.configure = configure  # each new connection's session setup, as the primary pool's
        self.pool_max, self.poll_s, self.timeout_s, self.max_lag_s = pool_max, poll_s, timeout_s, max_lag_s
        self._pushed_position = primary_position  # the ProjectionWatcher's (NOTIFY), None while unknown
        self.samples: deque[_Sample] = deque(maxlen=MAX_SAMPLES)
        self.polled_position: int | None = None  # the primary's, from our own sampling
        self._primary_pool: Callable[[], AsyncConnectionPool] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def primary_position(self) -> int | None:
        known = [p for p in (self._pushed_position(), self.polled_position) if p is not None]
        return max(known) if known else None

    def start(self, primary_pool: Callable[[], AsyncConnectionPool]) -> None:
        self._primary_pool = primary_pool
        for r in self.replicas:
            log.info("replicas.configured", replica=r.name, host=host_of(r.url))
            UP.labels(r.name).set(0)
        self._tasks = [asyncio.create_task(self._sample_primary(), name="replicas-primary")]
        self._tasks += [asyncio.create_task(self._watch(r), name=f"replicas-{r.name}") for r in self.replicas]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for r in self.replicas:
            if r.pool is not None:
                await r.pool.close(timeout=1)
                r.pool = None

    # --- the primary's WAL position over time (what "seconds behind" is measured against) ---
    async def _sample_primary(self) -> None:
        while True:
            try:
                assert self._primary_pool is not None
                async with asyncio.timeout(self.timeout_s):
                    async with self._primary_pool().connection(timeout=self.timeout_s) as conn:
                        row = await (await conn.execute(_PRIMARY)).fetchone()
                if row is not None:
                    self.note_primary(row[0], int(row[1]))
            except DB_ERRORS as e:  # the primary's own health is /health's business; lag is then unknown
                log.debug("replicas.primary_sample_failed", error=short_error(e))
            except Exception:  # a bug: logged, and sampling goes on (lag would otherwise freeze)
                log.exception("replicas.primary_sample_failed")
            await asyncio.sleep(self.poll_s)

    def note_primary(self, lsn: int | None, position: int, now: float | None = None) -> None:
        self.polled_position = position
        if lsn is not None and (not self.samples or lsn > self.samples[-1].lsn):
            self.samples.append(_Sample(lsn, time.monotonic() if now is None else now))

    # --- one replica ---
    async def _watch(self, r: Replica) -> None:
        conn: psycopg.AsyncConnection | None = None
        delay, last_position, was_behind = self.poll_s, None, False
        while True:
            try:
                if conn is None:
                    conn = await psycopg.AsyncConnection.connect(
                        r.url, autocommit=True, connect_timeout=max(2, math.ceil(self.timeout_s)),
                        options=f"-c statement_timeout={int(self.timeout_s * 1000)}")
                async with asyncio.timeout(self.timeout_s):
                    row = await (await conn.execute(_POLL)).fetchone()
                assert row is not None
                if r.pool is None or r.pool_broken:
                    await self._renew_pool(r)
                self.observe(r, bool(row[0]), row[1], row[2], int(row[3]))
            except Exception as e:  # a bug must not leave a dead replica in use either
                if not isinstance(e, DB_ERRORS):
                    log.exception("replicas.poll_failed", replica=r.name)
                r.fail(e, by="poll")
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                    conn = None
            if not r.up:  # still estimated from its last replay position: at least this far behind
                self.update_lag(r, time.monotonic())
            primary = self.primary_position()
            behind = r.up and r.position is not None and primary is not None and primary > r.position
            if behind and (not was_behind or r.position != last_position):
                delay = FAST_POLL_S  # newly behind, or replaying: look again soon, the cache waits for it
            elif behind:
                delay = min(self.poll_s, delay * 2)  # stuck (replay paused, a long transaction): back off
            else:
                delay = self.poll_s
            last_position, was_behind = r.position, behind
            await self._nap(r, delay)

    async def _renew_pool(self, r: Replica) -> None:
        old, r.pool = r.pool, None
        if old is not None:
            with contextlib.suppress(*DB_ERRORS):
                await old.close(timeout=1)
        pool = AsyncConnectionPool(
            r.url, min_size=1, max_size=self.pool_max, open=False, name=r.name, timeout=self.timeout_s,
            kwargs={"options": "-c timezone=UTC", "connect_timeout": max(2, math.ceil(self.timeout_s))},
            # A pooled connection to a replica that restarted is dead: checked on checkout, replaced.
            check=AsyncConnectionPool.check_connection, configure=self.configure)
        try:
            await pool.open(wait=True, timeout=self.timeout_s)
        except BaseException:
            await pool.close(timeout=0)
            raise
        r.pool, r.pool_broken = pool, False

    def observe(self, r: Replica, in_recovery: bool, replay_lsn: int | None, paused: bool | None, position: int,
                now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if r.position is not None and position < r.position:
            log.warning("replicas.position_went_back", replica=r.name, was=r.position, now=position)
        if not r.up:
            log.info("replicas.up", replica=r.name, host=host_of(r.url), position=position, was_down_s=round(
                now - r.since, 1))
            r.since = now
        r.up, r.error = True, None
        r.in_recovery, r.replay_lsn, r.paused, r.position = in_recovery, replay_lsn, paused, position
        self.update_lag(r, now)

    def update_lag(self, r: Replica, now: float) -> None:
        primary = self.primary_position()
        r.lag_events = max(0, primary - r.position) if primary is not None and r.position is not None else None
        if r.replay_lsn is None or not self.samples:  # not a physical standby, or the primary not sampled yet
            r.lag_bytes = None
            r.lag_seconds = 0.0 if r.lag_events == 0 else None
        else:
            r.lag_bytes = max(0, self.samples[-1].lsn - r.replay_lsn)
            first_unreplayed = bisect_right(self.samples, r.replay_lsn, key=lambda s: s.lsn)
            r.lag_seconds = (max(0.0, now - self.samples[first_unreplayed].at)
                             if first_unreplayed < len(self.samples) else 0.0)
        serving = r.up and (r.lag_seconds is None or r.lag_seconds <= self.max_lag_s)
        if r.up and serving != r.serving:
            if serving:
                log.info("replicas.serving", replica=r.name, lag_s=r.lag_seconds)
            else:
                log.warning("replicas.too_far_behind", replica=r.name, lag_s=round(r.lag_seconds or 0, 1),
                            max_lag_s=self.max_lag_s, reads="go to the other replicas, or the primary")
        r.serving = serving
        UP.labels(r.name).set(1 if serving else 0)
        if r.lag_seconds is not None:
            LAG_SECONDS.labels(r.name).set(r.lag_seconds)
        if r.lag_bytes is not None:
            LAG_BYTES.labels(r.name).set(r.lag_bytes)
        if r.lag_events is not None:
            LAG_EVENTS.labels(r.name).set(r.lag_events)

    async def _nap(self, r: Replica, delay: float) -> None:
        """Sleep `delay`, waking early when the primary's position moves past this replica's."""
        deadline = time.monotonic() + delay
        seen = self.primary_position()
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(NAP_S, left))
            now_at = self.primary_position()
            if now_at != seen and now_at is not None and r.up and r.position is not None and now_at > r.position:
                return
