"""/status: each source's committed cursor, the log head, the projector's position and lag."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from pydantic import BaseModel


class SourceStatus(BaseModel):
    source: str
    cursor: int
    updated_at: datetime


class Status(BaseModel):
    log_head: int
    projector_position: int
    projector_lag_events: int
    sources: list[SourceStatus]
    repos: dict[str, int]


async def read_status(conn: AsyncConnection) -> Status:
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT coalesce(greatest((SELECT max(seq) FROM record_event), (SELECT max(seq) FROM repo_event),"
            " (SELECT max(seq) FROM label_event)), 0),"
            " coalesce((SELECT position FROM projection_cursor WHERE name = 'main'), 0)"
        )
        head, position = await cur.fetchone()  # type: ignore[misc]
        await cur.execute("SELECT source, cursor, updated_at FROM source_cursor ORDER BY source")
        sources = [SourceStatus(source=s, cursor=c, updated_at=u) for s, c, u in await cur.fetchall()]
        await cur.execute("SELECT sync_status, count(*) FROM repo_state GROUP BY sync_status")
        repos = {s: int(n) for s, n in await cur.fetchall()}
    return Status(log_head=head, projector_position=position, projector_lag_events=max(0, head - position),
                  sources=sources, repos=repos)
