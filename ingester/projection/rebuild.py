"""`appview rebuild`: re-fold every projection from log position 0 into shadow tables, then swap.

The shadow tables are created from the same SQLAlchemy metadata the migrations target, with the
same index names, inside a separate schema; the projector code is the live one, pointed at the
shadow schema through `search_path`. The final catch-up and the swap happen in one transaction
holding the projector lock, so the live projector resumes on the new tables at the same position.
"""

from __future__ import annotations

import time

import psycopg
import structlog
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable
from tqdm import tqdm

from core.db.connect import PROJECTOR_LOCK, connect
from core.db.schema import PROJECTION_TABLES, projection_cursor
from ingester.projection.runner import Projector

log = structlog.get_logger(__name__)
SHADOW = "projection_rebuild"
TABLES = [t for t, _ in PROJECTION_TABLES] + [projection_cursor]


def _ddl() -> list[str]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
    stmts = []
    for table in TABLES:
        stmts.append(str(CreateTable(table).compile(dialect=dialect)))
        stmts.extend(str(CreateIndex(ix).compile(dialect=dialect)) for ix in table.indexes)
    return stmts


async def _count_log(conn: psycopg.AsyncConnection) -> int:
    async with conn.cursor() as cur:
        await cur.execute("SELECT (SELECT count(*) FROM record_event) + (SELECT count(*) FROM repo_event)")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def rebuild(url: str, *, batch_size: int = 5000, show_progress: bool = True) -> int:
    """Rebuild all projections; returns the number of log events folded."""
    started = time.monotonic()
    async with await connect(url, search_path=f"{SHADOW},public") as conn:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE")
            await cur.execute(f"CREATE SCHEMA {SHADOW}")
            for stmt in _ddl():
                await cur.execute(stmt)
        projector = Projector(batch_size=batch_size, lock=False)
        total_events = await _count_log(conn)
        with tqdm(total=total_events, unit="ev", desc="rebuild", disable=not show_progress) as bar:
            def advance(n: int) -> None:
                bar.update(n)

            folded = await projector.catch_up(conn, progress=advance)
            async with conn.transaction(), conn.cursor() as cur:
                await cur.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
                folded += await projector.catch_up(conn, progress=advance)
                for table in TABLES:
                    await cur.execute(f'DROP TABLE IF EXISTS public."{table.name}"')
                    await cur.execute(f'ALTER TABLE {SHADOW}."{table.name}" SET SCHEMA public')
                await cur.execute(f"DROP SCHEMA {SHADOW}")
    log.info("rebuild.done", events=folded, seconds=round(time.monotonic() - started, 2))
    return folded
