"""Where a request reads from: one target per request, chosen once, used for everything it reads.

The target is a healthy replica (round robin over those `serving`) or, when none is configured or usable, the
primary. The response cache takes its key position from the same target (`position`), before the handler reads:
a page read on replica A can never be stored under a position that came from replica B or from the primary,
because there is only the one target in the request's scope. A replica that cannot hand out a connection within
`DATABASE_READ_TIMEOUT_S` is taken out of use and the request continues on the primary — whose data is never
older than the replica's position the key was taken from, so the key stays honest.

Whatever LISTENs or writes (the projection watcher, the outbound stream, /health, /status) uses the primary
pool directly: a hot standby has no NOTIFY, and it refuses writes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import structlog
from prometheus_client import Counter
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from appview.freshness import ProjectionWatcher
from appview.pools import session_setup
from appview.replicas import Replica, ReplicaMonitor
from appview.settings import AppviewSettings
from appview.status import ReplicaStatus
from core.settings_checks import split_database_urls

log = structlog.get_logger(__name__)

READS = Counter("appview_reads_total", "Requests by the database they read from (primary or replica-N)",
                ["target"])
FALLBACKS = Counter("appview_replica_fallbacks_total", "Requests moved to the primary because their replica "
                    "had no connection to give (down, or its pool full)", ["replica", "why"])
_SCOPE_KEY = "appview.read_target"
Scope = MutableMapping[str, Any]


class Primary:
    name = "primary"

    def __init__(self, watcher: ProjectionWatcher) -> None:
        self.watcher = watcher

    @property
    def position(self) -> int | None:
        return self.watcher.position


Target = Primary | Replica


class Reads:
    def __init__(self, watcher: ProjectionWatcher, settings: AppviewSettings) -> None:
        self.primary = Primary(watcher)
        urls = split_database_urls(settings.database_read_url)
        self.monitor = ReplicaMonitor(
            urls, pool_max=settings.db_pool_max, poll_s=settings.database_read_poll_s,
            timeout_s=settings.database_read_timeout_s, max_lag_s=settings.database_read_max_lag_s,
            primary_position=lambda: watcher.position, configure=session_setup(settings)) if urls else None
        self._primary_pool: Callable[[], AsyncConnectionPool] | None = None
        self._next = 0
        self._all_out = False

    @property
    def replicas(self) -> list[Replica]:
        return self.monitor.replicas if self.monitor else []

    def start(self, primary_pool: Callable[[], AsyncConnectionPool]) -> None:
        self._primary_pool = primary_pool
        if self.monitor:
            self.monitor.start(primary_pool)

    async def stop(self) -> None:
        if self.monitor:
            await self.monitor.stop()

    def status(self) -> list[ReplicaStatus]:
        return [ReplicaStatus(name=r.name, up=r.up, serving=r.serving, error=r.error, in_recovery=r.in_recovery,
                              replay_paused=r.paused, projector_position=r.position, lag_events=r.lag_events,
                              lag_bytes=r.lag_bytes,
                              lag_seconds=None if r.lag_seconds is None else round(r.lag_seconds, 3))
                for r in self.replicas]

    def target(self, scope: Scope) -> Target:
        """This request's target: chosen on first use, the same ever after."""
        chosen: Target | None = scope.get(_SCOPE_KEY)
        if chosen is None:
            chosen = scope[_SCOPE_KEY] = self._pick()
            READS.labels(chosen.name).inc()
        return chosen

    def position(self, scope: Scope) -> int | None:
        """The projector position this request's data is at least as new as (None: unknown, do not cache)."""
        return self.target(scope).position

    def _pick(self) -> Target:
        serving = [r for r in self.replicas if r.serving and r.pool is not None]
        if serving:
            if self._all_out:
                log.info("replicas.reads_resumed", serving=[r.name for r in serving])
                self._all_out = False
            self._next = (self._next + 1) % len(serving)
            return serving[self._next]
        if self.replicas and not self._all_out:
            log.warning("replicas.none_serving", reads="go to the primary",
                        replicas={r.name: r.error or f"lag {r.lag_seconds}s" for r in self.replicas})
            self._all_out = True
        return self.primary

    @contextlib.asynccontextmanager
    async def connection(self, scope: Scope) -> AsyncIterator[AsyncConnection]:
        """A connection to this request's target (the primary if its replica fails to give one)."""
        assert self._primary_pool is not None, "Reads.start() runs in the app's lifespan"
        target = self.target(scope)
        async with contextlib.AsyncExitStack() as stack:
            conn: AsyncConnection | None = None
            if isinstance(target, Replica) and (pool := target.pool) is not None:
                try:
                    conn = await stack.enter_async_context(pool.connection())
                except (PoolTimeout, PoolClosed) as e:
                    stats = pool.get_stats()
                    full = stats.get("pool_size", 0) >= (pool.max_size or 0) and not isinstance(e, PoolClosed)
                    FALLBACKS.labels(target.name, "busy" if full else "down").inc()
                    if not full:  # it could not connect at all: out of use until its poller sees it answer
                        target.fail(e, by="request")
            if conn is None:
                if target is not self.primary:  # the rest of this request too: never older than its key position
                    scope[_SCOPE_KEY] = self.primary
                conn = await stack.enter_async_context(self._primary_pool().connection())
            yield conn
