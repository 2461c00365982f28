"""How fresh the projections are, pushed to us: the projector NOTIFYs its position on commit and one
listener connection per process keeps `position` current. None means "unknown" (listener down):
callers must then not trust anything cached."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import structlog

from core.db.connect import PROJECTION_CHANNEL
from core.db.urls import libpq_url
from core.retry import Backoff

log = structlog.get_logger(__name__)


class ProjectionWatcher:
    def __init__(self, database_url: str) -> None:
        self.url = libpq_url(database_url)
        self.position: int | None = None
        self.failing = False  # the listener lost its connection (as opposed to still starting)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="projection-watcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {PROJECTION_CHANNEL}")
                    cur = await conn.execute("SELECT coalesce(max(position), 0) FROM projection_cursor")
                    row = await cur.fetchone()
                    self.position = int(row[0]) if row else 0
                    self.failing = False
                    backoff.reset()
                    async for note in conn.notifies():
                        self.position = max(self.position or 0, int(note.payload))
            except (OSError, psycopg.Error, ValueError) as e:
                self.position, self.failing = None, True
                delay = backoff.next_delay()
                log.warning("freshness.listener_down", error=str(e), retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)
            except Exception:  # a bug must not leave a stale position trusted by the cache: log, retry
                self.position, self.failing = None, True
                delay = backoff.next_delay()
                log.exception("freshness.listener_failed", retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)
