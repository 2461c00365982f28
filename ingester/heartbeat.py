"""Publish the supervisor's view of every component to `component_health`, every few seconds.

The API (possibly another machine) reads the table for /health and /ready. One small upsert of all
rows per tick, on its own connection with a statement timeout, so the heartbeat stays cheap and
never queues behind the ingest work. Rows of components this ingester no longer runs (a host
removed from the configuration) are deleted on start: a single active ingester owns the table.
"""

from __future__ import annotations

import asyncio

import psycopg
import structlog
from psycopg.types.json import Jsonb

from core.db.connect import connect
from core.health import UPSERT_SQL
from core.retry import pause
from ingester.eventlog.fence import check_fence
from ingester.metrics import HEARTBEATS
from ingester.supervisor import Snapshot, Supervisor

log = structlog.get_logger(__name__)

HEARTBEAT_COMPONENT = "heartbeat"
_STATEMENT_TIMEOUT_MS = 5000


async def write(conn: psycopg.AsyncConnection, snapshots: list[Snapshot]) -> None:
    async with conn.transaction():
        async with conn.cursor() as cur:  # only the leader owns the table: a deposed one writes no `stopped`
            await check_fence(cur)
        await conn.execute(UPSERT_SQL, ([s.name for s in snapshots], [s.kind for s in snapshots],
                                        [s.state for s in snapshots], [Jsonb(s.detail) for s in snapshots]))


class Heartbeat:
    def __init__(self, supervisor: Supervisor, url: str, interval_s: float) -> None:
        self.supervisor, self.url, self.interval_s = supervisor, url, interval_s
        self._forgotten = False

    async def _connect(self) -> psycopg.AsyncConnection:
        conn = await connect(self.url, autocommit=True)
        await conn.execute(f"SET statement_timeout = {_STATEMENT_TIMEOUT_MS}")
        return conn

    async def run(self, stop: asyncio.Event) -> None:
        """The `heartbeat` component: dies on a database error (the supervisor restarts it)."""
        async with await self._connect() as conn:
            if not self._forgotten:
                await conn.execute("DELETE FROM component_health WHERE component <> ALL(%s)",
                                   (list(self.supervisor.components),))
                self._forgotten = True
            while not stop.is_set():
                try:
                    await write(conn, self.supervisor.snapshot())
                except BaseException:
                    HEARTBEATS.labels("failed").inc()
                    raise
                HEARTBEATS.labels("ok").inc()
                await pause(stop, self.interval_s)

    async def final(self, timeout_s: float = 3.0) -> None:
        """After shutdown: publish every component as `stopped` (best effort, bounded)."""
        try:
            async with asyncio.timeout(timeout_s):
                async with await self._connect() as conn:
                    await write(conn, self.supervisor.snapshot())
        except (OSError, psycopg.Error, TimeoutError) as e:
            log.warning("heartbeat.final_failed", error=str(e))
