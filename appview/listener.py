"""The API process's one LISTEN connection, shared by everything that wants to be woken by Postgres.

The response cache's freshness (channel `projection`) and the outbound stream's hub (channel `event_log`)
used to hold a LISTEN session each; with many API workers every idle session counts against
`max_connections`, so each worker now holds exactly one. LISTEN needs a real session: behind a
transaction-mode PgBouncer this connection must go straight to Postgres (`DATABASE_LISTEN_URL`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import psycopg
import structlog

from core.db.connect import connect
from core.retry import Backoff

log = structlog.get_logger(__name__)

OnNotify = Callable[[str], None]
OnConnect = Callable[[psycopg.AsyncConnection], Awaitable[None]]


class Listener:
    def __init__(self, url: str) -> None:
        self.url = url
        self.handlers: dict[str, list[OnNotify]] = {}
        self.on_connect: list[OnConnect] = []  # after LISTEN, before the first notification: catch up
        self.on_down: list[Callable[[], None]] = []  # the session is lost: nothing pushed can be trusted
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def listen(self, channel: str, handler: OnNotify) -> None:
        """Call `handler(payload)` for each notification on `channel` (register before `start`)."""
        self.handlers.setdefault(channel, []).append(handler)

    def start(self) -> None:
        if self._task is None and self.handlers:
            self._task = asyncio.create_task(self._run(), name="pg-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with await connect(self.url, autocommit=True) as conn:
                    for channel in self.handlers:
                        await conn.execute(f"LISTEN {channel}")
                    for hook in self.on_connect:
                        await hook(conn)
                    self.connected.set()
                    backoff.reset()
                    async for note in conn.notifies():
                        for handler in self.handlers.get(note.channel, ()):
                            handler(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a lost session or a bug: say so, and never leave pushed state trusted
                self.connected.clear()
                for down in self.on_down:
                    down()
                delay = backoff.next_delay()
                if isinstance(e, OSError | psycopg.Error | ValueError):
                    log.warning("listener.down", error=str(e), retry_in_s=round(delay, 2))
                else:
                    log.exception("listener.failed", retry_in_s=round(delay, 2))
                await asyncio.sleep(delay)
