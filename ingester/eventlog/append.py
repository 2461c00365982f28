"""Stage ④: append a batch of log rows and the source cursor in one transaction.

Rows are written with binary COPY into a per-connection staging table and moved into the log
with one `INSERT … SELECT … ON CONFLICT DO NOTHING` (the dedup key), in stream order so that
`seq` follows the order we observed. Repo events interleave with record events, so a batch is
written as runs of consecutive same-kind events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from core.db.connect import LOG_APPEND_LOCK, NOTIFY_CHANNEL
from core.events import RecordEvent, RepoEvent

_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS stage_record_event (
    ord bigint, did text, collection text, rkey text, rev text, action text, cid text,
    record jsonb, source text, source_seq bigint, verified boolean, rejected text
) ON COMMIT DELETE ROWS
"""
_STAGE_COLUMNS = "ord, did, collection, rkey, rev, action, cid, record, source, source_seq, verified, rejected"
_STAGE_TYPES = ["int8", "text", "text", "text", "text", "text", "text", "jsonb", "text", "int8", "bool", "text"]
_MOVE = """
INSERT INTO record_event (did, collection, rkey, rev, action, cid, record, source, source_seq,
                          verified, rejected)
SELECT did, collection, rkey, rev, action, cid, record, source, source_seq, verified, rejected
FROM stage_record_event ORDER BY ord
ON CONFLICT DO NOTHING
RETURNING seq
"""
_INSERT_REPO = """
INSERT INTO repo_event (did, kind, rev, payload, source, source_seq)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
RETURNING seq
"""
_UPSERT_CURSOR = """
INSERT INTO source_cursor (source, cursor, updated_at) VALUES (%s, %s, now())
ON CONFLICT (source) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()
"""
_UPSERT_REPO_STATE = """
INSERT INTO repo_state (did, rev, data_cid, sync_status, desync_reason, updated_at)
SELECT *, now() FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])
ON CONFLICT (did) DO UPDATE SET rev = EXCLUDED.rev, data_cid = EXCLUDED.data_cid,
    sync_status = EXCLUDED.sync_status, desync_reason = EXCLUDED.desync_reason, updated_at = now()
"""


@dataclass(frozen=True, slots=True)
class RepoState:
    did: str
    rev: str
    data_cid: str | None
    sync_status: str
    desync_reason: str | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    records: int
    repo_events: int
    duplicates: int
    head: int | None


async def append_batch(
    conn: psycopg.AsyncConnection,
    events: Sequence[RecordEvent | RepoEvent],
    *,
    cursor: tuple[str, int] | None = None,
    repo_states: Sequence[RepoState] = (),
) -> AppendResult:
    """Append `events` in order, plus the source cursor and repo states, in one transaction."""
    records = repo_rows = 0
    head: int | None = None
    async with conn.transaction():
        async with conn.cursor() as cur:
            await cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_APPEND_LOCK,))
            start = 0
            while start < len(events):
                end = start
                is_record = isinstance(events[start], RecordEvent)
                while end < len(events) and isinstance(events[end], RecordEvent) == is_record:
                    end += 1
                run = events[start:end]
                if is_record:
                    seqs = await _append_records(cur, run)  # type: ignore[arg-type]
                    records += len(seqs)
                else:
                    seqs = await _append_repo_events(cur, run)  # type: ignore[arg-type]
                    repo_rows += len(seqs)
                if seqs:
                    head = max(seqs)
                start = end
            if repo_states:
                await _upsert_repo_states(cur, repo_states)
            if cursor is not None:
                await cur.execute(_UPSERT_CURSOR, cursor)
            if head is not None:
                await cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(head)))
    return AppendResult(records, repo_rows, len(events) - records - repo_rows, head)


async def _append_records(cur: psycopg.AsyncCursor, run: Sequence[RecordEvent]) -> list[int]:
    await cur.execute(_STAGE_DDL)
    async with cur.copy(f"COPY stage_record_event ({_STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(_STAGE_TYPES)
        for i, e in enumerate(run):
            await cp.write_row((
                i, e.did, e.collection, e.rkey, e.rev, e.action, e.cid,
                None if e.record is None else Jsonb(e.record),
                e.source, e.source_seq, e.verified, e.rejected,
            ))
    await cur.execute(_MOVE)
    seqs = [row[0] for row in await cur.fetchall()]
    await cur.execute("TRUNCATE stage_record_event")
    return seqs


async def _append_repo_events(cur: psycopg.AsyncCursor, run: Sequence[RepoEvent]) -> list[int]:
    seqs: list[int] = []
    for e in run:
        await cur.execute(_INSERT_REPO, (e.did, e.kind, e.rev, Jsonb(e.payload), e.source, e.source_seq))
        row = await cur.fetchone()
        if row is not None:
            seqs.append(row[0])
    return seqs


async def _upsert_repo_states(cur: psycopg.AsyncCursor, states: Sequence[RepoState]) -> None:
    latest = {s.did: s for s in states}  # last write per DID wins, as in stream order
    cols = list(zip(*[(s.did, s.rev, s.data_cid, s.sync_status, s.desync_reason) for s in latest.values()],
                    strict=True))
    await cur.execute(_UPSERT_REPO_STATE, [list(c) for c in cols])
