"""`appview rebuild`: re-fold every projection from log position 0 into shadow tables, then swap.

The shadow tables are created from the same SQLAlchemy metadata the migrations target, with the
same index names, inside a separate schema; the projector code is the live one, pointed at the
shadow schema through `search_path`. The final catch-up and the swap happen in one transaction
holding the projector lock, so the live projector resumes on the new tables at the same position.

A log trimmed by LOG_RETENTION (`log_retention.dropped_through` > 0) no longer holds what the
projections were folded from: a re-fold from position 0 would silently give a different state, so the
rebuild refuses, before it starts and again at the swap (a trim may run meanwhile). README "Log growth
and retention" says what rebuilds such a deployment instead.
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
_TRIMMED = "SELECT dropped_through FROM log_retention"
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


class TrimmedLog(Exception):
    """The log was trimmed by retention: a rebuild from it would not give the projections back."""


async def _refuse_trimmed(cur: psycopg.AsyncCursor) -> None:
    await cur.execute(_TRIMMED)
    row = await cur.fetchone()
    if row is not None and row[0] > 0:
        raise TrimmedLog(
            f"the log was trimmed by retention (events up to seq {row[0]} were dropped): a rebuild from it would "
            "silently give different projections, so it is refused; rebuild from a database snapshot, or empty "
            "the projections and re-run the backfill (README \"Log growth and retention\")")


async def rebuild(url: str, *, batch_size: int = 5000, show_progress: bool = True) -> int:
    """Rebuild all projections; returns the number of log events folded."""
    started = time.monotonic()
    async with await connect(url, search_path=f"{SHADOW},public") as conn:
        async with conn.transaction(), conn.cursor() as cur:
            await _refuse_trimmed(cur)
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
                await _refuse_trimmed(cur)  # rolls the swap back: the live projections stay as they were
                for table in TABLES:
                    await cur.execute(f'DROP TABLE IF EXISTS public."{table.name}"')
                    await cur.execute(f'ALTER TABLE {SHADOW}."{table.name}" SET SCHEMA public')
                await cur.execute(f"DROP SCHEMA {SHADOW}")
    log.info("rebuild.done", events=folded, seconds=round(time.monotonic() - started, 2))
    return folded
