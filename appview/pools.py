"""The API's Postgres connection pools: sized by settings, safe behind a transaction-mode PgBouncer, and
their usage published as metrics.

Behind PgBouncer in transaction mode a session is never ours beyond one transaction, so nothing here
relies on session state: the time zone is SET once per connection (PgBouncer tracks `TimeZone` per
client and re-applies it on whichever server connection it hands us; a startup `options` parameter
would be refused), and with `DB_PREPARED_STATEMENTS=false` psycopg never prepares a statement.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

import psycopg
from prometheus_client import Gauge
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from appview.settings import AppviewSettings
from core.db.urls import libpq_url

# livesum: with several API workers (prometheus multiprocess mode) a scrape shows every live worker's sum.
POOL_SIZE = Gauge("appview_db_pool_connections", "Connections a pool holds (open: idle + in use)", ["pool"],
                  multiprocess_mode="livesum")
POOL_IN_USE = Gauge("appview_db_pool_in_use", "Connections lent out by a pool", ["pool"], multiprocess_mode="livesum")
POOL_WAITING = Gauge("appview_db_pool_waiting", "Requests waiting for a pool's connection", ["pool"],
                     multiprocess_mode="livesum")
POOL_MAX = Gauge("appview_db_pool_max", "A pool's DB_POOL_MAX", ["pool"], multiprocess_mode="livesum")


def session_setup(settings: AppviewSettings) -> Callable[[psycopg.AsyncConnection], Awaitable[None]]:
    """What every new connection of a pool runs once. The plan cache mode matters only where psycopg prepares;
    behind a pooler that shares server sessions it is the role's to set (`ALTER ROLE … SET plan_cache_mode`)."""
    plans = settings.db_plan_cache_mode if settings.db_prepared_statements else None

    async def setup(conn: psycopg.AsyncConnection) -> None:
        await conn.execute("SET TIME ZONE 'UTC'")
        if plans is not None:
            await conn.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Identifier(plans)))
        await conn.commit()
    return setup


def make_pool(url: str, settings: AppviewSettings, name: str) -> AsyncConnectionPool:
    """A pool (not yet open) of `DB_POOL_MIN`..`DB_POOL_MAX` connections to `url`."""
    kwargs: dict[str, object] = {}
    if not settings.db_prepared_statements:
        kwargs["prepare_threshold"] = None
    return AsyncConnectionPool(libpq_url(url), min_size=settings.db_pool_min, max_size=settings.db_pool_max,
                               max_idle=settings.db_pool_max_idle_s, kwargs=kwargs,
                               configure=session_setup(settings), open=False, name=name)


class PoolGauges:
    """Copies each pool's `get_stats()` into the gauges every `interval_s` (a scrape may reach another worker,
    so the values are written, not computed at scrape time)."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s
        self.pools: dict[str, AsyncConnectionPool] = {}
        # Pools that come and go (a read replica's, renewed after it restarts; None while it is down): asked each time.
        self.providers: list[Callable[[], Mapping[str, AsyncConnectionPool | None]]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, name: str, pool: AsyncConnectionPool) -> None:
        self.pools[name] = pool
        self.update()

    def add_provider(self, pools: Callable[[], Mapping[str, AsyncConnectionPool | None]]) -> None:
        self.providers.append(pools)
        self.update()

    def update(self) -> None:
        current: dict[str, AsyncConnectionPool | None] = dict(self.pools)
        for provider in self.providers:
            current.update(provider())
        for name, pool in current.items():
            stats = pool.get_stats() if pool is not None else {}
            size = stats.get("pool_size", 0)
            POOL_SIZE.labels(name).set(size)
            POOL_IN_USE.labels(name).set(size - stats.get("pool_available", 0))
            POOL_WAITING.labels(name).set(stats.get("requests_waiting", 0))
            POOL_MAX.labels(name).set(stats.get("pool_max", 0))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pool-gauges")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.update()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for name in self.pools:
            for gauge in (POOL_SIZE, POOL_IN_USE, POOL_WAITING):
                gauge.labels(name).set(0)
