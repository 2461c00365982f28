"""`appview rebuild`: re-fold every projection from log position 0 into shadow tables, then swap.

The shadow tables are created from the same SQLAlchemy metadata the migrations target, with the
same index names, inside a separate schema; the projector code is the live one, pointed at the
shadow schema through `search_path`. The final catch-up and the swap happen in one transaction
holding the projector lock, so the live projector resumes on the new tables at the same position.

A bulk load, not a replay of live steps: large pages; only the indexes the fold itself looks rows up by
(unique keys, and `did`-led ones for account purges) exist while it loads, the others are built once
after it; derived tables (`base.Derived` hooks: like/comment counts, play links) are recomputed once at
the end instead of around every page; record state is looked up only for records with more than one event in
the log (`SingleEventKeys`), every other record's row going straight in by COPY (`Put.fresh`). None of it
changes a row: the digest equals live ingest's. A crash
anywhere before the swap leaves only the shadow schema, which the next rebuild drops.

A log trimmed by LOG_RETENTION (`log_retention.dropped_through` > 0) no longer holds what the
projections were folded from: a re-fold from position 0 would silently give a different state, so the
rebuild refuses, before it starts and again at the swap (a trim may run meanwhile). README "Log growth
and retention" says what rebuilds such a deployment instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import psycopg
import structlog
from sqlalchemy import Index
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable
from tqdm import tqdm

from core.db.connect import PROJECTOR_LOCK, connect
from core.db.schema import PROJECTION_TABLES, projection_cursor
from ingester.eventlog.read import HEAD as LOG_HEAD
from ingester.eventlog.read import read_after
from ingester.projection.fold import SingleEventKeys
from ingester.projection.runner import Projector

log = structlog.get_logger(__name__)
_TRIMMED = "SELECT dropped_through FROM log_retention"
SHADOW = "projection_rebuild"
TABLES = [t for t, _ in PROJECTION_TABLES] + [projection_cursor]
BATCH = 20_000  # log events per bulk-load step


def _by_did(ix: Index) -> bool:
    pg = ix.dialect_options["postgresql"]
    first = next(iter(ix.expressions), None)
    return getattr(first, "name", None) == "did" and not pg["using"] and pg["where"] is None


def _needed_while_loading(indexes: set[Index]) -> set[Index]:
    """Unique indexes (the upserts' conflict targets) and the narrowest `did`-led one (account purges) are
    used by the fold; the rest serve reads and are built after the load, in one pass each."""
    by_did = sorted((ix for ix in indexes if _by_did(ix)), key=lambda ix: (len(ix.expressions), str(ix.name)))
    return {ix for ix in indexes if ix.unique} | set(by_did[:1])


def _ddl() -> tuple[list[str], list[str]]:
    """(tables and the indexes the load needs, the indexes built after it)."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
    now: list[str] = []
    later: list[str] = []
    for table in TABLES:
        now.append(str(CreateTable(table).compile(dialect=dialect)))
        needed = _needed_while_loading(set(table.indexes))
        for ix in sorted(table.indexes, key=lambda i: str(i.name)):
            (now if ix in needed else later).append(str(CreateIndex(ix).compile(dialect=dialect)))
    return now, later


async def _count_log(conn: psycopg.AsyncConnection) -> int:
    async with conn.cursor() as cur:
        await cur.execute("SELECT (SELECT count(*) FROM record_event) + (SELECT count(*) FROM repo_event)")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


# Records with more than one event in the log (edits, deletes, replays). Every other record's only event finds
# no state when folded, so the load looks up only these. Past the cap the load simply looks up every key.
_REPEATED = """
SELECT did, collection, rkey FROM record_event_key WHERE seq <= %s
GROUP BY did, collection, rkey HAVING count(*) > 1 LIMIT %s
"""
MAX_REPEATED = 2_000_000


async def _single_event_keys(conn: psycopg.AsyncConnection) -> SingleEventKeys | None:
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(LOG_HEAD)  # appends commit in seq order: nothing at or below it can still arrive
        row = await cur.fetchone()
        through = int(row[0]) if row and row[0] is not None else 0
        await cur.execute(_REPEATED, (through, MAX_REPEATED + 1))
        repeated = frozenset((r[0], r[1], r[2]) for r in await cur.fetchall())
    return SingleEventKeys(through, repeated) if len(repeated) <= MAX_REPEATED else None


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


async def _load(url: str, conn: psycopg.AsyncConnection, projector: Projector,
                progress: Callable[[int], None]) -> int:
    """Fold the log from 0, reading page N+1 on a second connection while page N is written (Python decodes
    one while Postgres writes the other: two cores)."""
    folded = position = 0
    async with await connect(url, autocommit=True) as reader:
        ahead = asyncio.create_task(read_after(reader, position, projector.batch_size))
        try:
            while events := await ahead:
                ahead = asyncio.create_task(read_after(reader, events[-1].seq, projector.batch_size))
                folded += await projector.step(conn, (position, events))
                position = events[-1].seq
                progress(len(events))
        finally:
            ahead.cancel()
            with contextlib.suppress(BaseException):
                await ahead
    return folded


async def rebuild(url: str, *, batch_size: int = BATCH, show_progress: bool = True) -> int:
    """Rebuild all projections; returns the number of log events folded."""
    started = time.monotonic()
    tables, indexes = _ddl()
    async with await connect(url, search_path=f"{SHADOW},public") as conn:
        await conn.execute("SET maintenance_work_mem = '256MB'")
        await conn.commit()
        async with conn.transaction(), conn.cursor() as cur:
            await _refuse_trimmed(cur)
            await cur.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE")
            await cur.execute(f"CREATE SCHEMA {SHADOW}")
            for stmt in tables:
                await cur.execute(stmt)
        projector = Projector(batch_size=batch_size, lock=False, defer_derived=True)
        projector.single_event_keys = await _single_event_keys(conn)
        total_events = await _count_log(conn)
        with tqdm(total=total_events, unit="ev", desc="rebuild", disable=not show_progress) as bar:
            def advance(n: int) -> None:
                bar.update(n)

            folded = await _load(url, conn, projector, advance)
            loaded = time.monotonic()
            async with conn.transaction(), conn.cursor() as cur:
                for stmt in indexes:
                    await cur.execute(stmt)
            indexed = time.monotonic()
            async with conn.transaction(), conn.cursor() as cur:
                await cur.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
                folded += await projector.catch_up(conn, progress=advance)
                await projector.recompute_derived(cur)
                await _refuse_trimmed(cur)  # rolls the swap back: the live projections stay as they were
                for table in TABLES:
                    await cur.execute(f'DROP TABLE IF EXISTS public."{table.name}"')
                    await cur.execute(f'ALTER TABLE {SHADOW}."{table.name}" SET SCHEMA public')
                await cur.execute(f"DROP SCHEMA {SHADOW}")
    log.info("rebuild.done", events=folded, seconds=round(time.monotonic() - started, 2),
             load_s=round(loaded - started, 2), index_s=round(indexed - loaded, 2),
             swap_s=round(time.monotonic() - indexed, 2))
    return folded
