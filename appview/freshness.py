"""How fresh the projections are, pushed to us: the projector NOTIFYs its position on commit and the
process's one listener connection (appview/listener.py) keeps `position` current. None means "unknown"
(listener down): callers must then not trust anything cached."""

from __future__ import annotations

import psycopg

from appview.listener import Listener
from core.db.connect import PROJECTION_CHANNEL


class ProjectionWatcher:
    def __init__(self, listener: Listener) -> None:
        self.position: int | None = None
        self.failing = False  # the listener lost its connection (as opposed to still starting)
        listener.listen(PROJECTION_CHANNEL, self._notified)
        listener.on_connect.append(self._caught_up)
        listener.on_down.append(self._down)

    async def _caught_up(self, conn: psycopg.AsyncConnection) -> None:
        # After LISTEN: a commit between this read and the first notification is still pushed to us.
        cur = await conn.execute("SELECT coalesce(max(position), 0) FROM projection_cursor")
        row = await cur.fetchone()
        self.position = max(self.position or 0, int(row[0]) if row else 0)
        self.failing = False

    def _notified(self, payload: str) -> None:
        # Before the catch-up read the position stays unknown; a payload that is not a position is ignored.
        if self.position is not None and payload.isascii() and payload.isdigit():
            self.position = max(self.position, int(payload))

    def _down(self) -> None:
        self.position, self.failing = None, True
