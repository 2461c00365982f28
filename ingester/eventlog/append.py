"""Stage ④: append a batch of log rows and the source cursor in one transaction.

Record rows are written with binary COPY into a per-connection staging table and moved into the
log with one statement: their dedup keys go into `record_event_key` (`ON CONFLICT DO NOTHING`) and
only the rows whose key went in are inserted into the (partitioned) log; `seq` follows the order
we observed, across record and repo events alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from core.db.connect import LOG_APPEND_LOCK, NOTIFY_CHANNEL
from core.events import RecordEvent, RepoEvent
from ingester.eventlog.fence import check_fence
from ingester.eventlog.partitions import ensure_partition_for, forget_partitions
from ingester.eventlog.staging import ensure_stage, forget_stages
from ingester.sources.envelope import Reject

_STAGE = "stage_record_event"
_STAGE_DDL = (
    "seq bigint, did text, collection text, rkey text, rev text, action text, cid text, record jsonb,"
    " source text, source_seq bigint, verified boolean, rejected text"
)
_COLUMNS = "seq, did, collection, rkey, rev, action, cid, record, source, source_seq, verified, rejected"
_STAGE_TYPES = ["int8", "text", "text", "text", "text", "text", "text", "jsonb", "text", "int8", "bool", "text"]
_KEY_COLUMNS = "did, collection, rkey, rev, action, verified, seq"
_MOVE = f"""
WITH fresh AS (
    INSERT INTO record_event_key ({_KEY_COLUMNS})
    SELECT {_KEY_COLUMNS} FROM {_STAGE} ORDER BY seq
    ON CONFLICT DO NOTHING
    RETURNING seq
), ins AS (
    INSERT INTO record_event ({_COLUMNS})
    SELECT {_COLUMNS} FROM {_STAGE} WHERE seq IN (SELECT seq FROM fresh) ORDER BY seq
    RETURNING seq
) SELECT count(*), max(seq) FROM ins
"""
_INSERT_REPO = """
INSERT INTO repo_event (seq, did, kind, rev, payload, source, source_seq)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
RETURNING seq
"""
_UPSERT_CURSOR = """
INSERT INTO source_cursor (source, cursor, updated_at) VALUES (%s, %s, now())
ON CONFLICT (source) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()
"""
_INSERT_REJECT = """
INSERT INTO frame_reject (source, source_seq, reason_kind, reason, size, sha256, prefix)
VALUES (%s, %s, %s, %s, %s, %s, %s)
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
    rejects: Sequence[Reject] = (),
) -> AppendResult:
    """Append `events` in order, plus the source cursor, repo states and the frames set aside, in one
    transaction.

    `seq`s are reserved for the whole batch up front (under the append lock, so nobody else draws
    from the sequence meanwhile) and handed out in stream order; record events then go in with one
    COPY whatever the repo events between them. Rows dropped by the dedup key leave gaps.
    """
    try:
        return await _append(conn, events, cursor, repo_states, rejects)
    except BaseException:
        forget_stages(conn)
        forget_partitions(conn)
        raise


async def _append(
    conn: psycopg.AsyncConnection,
    events: Sequence[RecordEvent | RepoEvent],
    cursor: tuple[str, int] | None,
    repo_states: Sequence[RepoState],
    rejects: Sequence[Reject],
) -> AppendResult:
    records = repo_rows = 0
    heads: list[int] = []
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_APPEND_LOCK,))
        await check_fence(cur)  # a leader that lost its lease appends nothing (ingester/leadership.py)
        if events:
            await cur.execute("SELECT nextval('event_seq')")
            first = (await cur.fetchone())[0]  # type: ignore[index]
            if len(events) > 1:
                await cur.execute("SELECT setval('event_seq', %s)", (first + len(events) - 1,))
            record_rows = [(first + i, e) for i, e in enumerate(events) if isinstance(e, RecordEvent)]
            repo_events = [(first + i, e) for i, e in enumerate(events) if isinstance(e, RepoEvent)]
            if record_rows:
                await ensure_partition_for(cur, record_rows[-1][0])
                records, head = await _append_records(cur, record_rows)
                if head is not None:
                    heads.append(head)
            for seq, e in repo_events:
                await cur.execute(_INSERT_REPO, (seq, e.did, e.kind, e.rev, Jsonb(e.payload), e.source, e.source_seq))
                if await cur.fetchone() is not None:
                    repo_rows += 1
                    heads.append(seq)
        if repo_states:
            await _upsert_repo_states(cur, repo_states)
        if rejects:
            await cur.executemany(_INSERT_REJECT, [
                (r.source, r.seq, r.kind, r.reason, r.size, r.sha256, r.prefix) for r in rejects])
        if cursor is not None:
            await cur.execute(_UPSERT_CURSOR, cursor)
        if heads:
            await cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(max(heads))))
    return AppendResult(records, repo_rows, len(events) - records - repo_rows, max(heads) if heads else None)


async def _append_records(cur: psycopg.AsyncCursor, rows: Sequence[tuple[int, RecordEvent]]) -> tuple[int, int | None]:
    await ensure_stage(cur, _STAGE, _STAGE_DDL)
    async with cur.copy(f"COPY {_STAGE} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(_STAGE_TYPES)
        for seq, e in rows:
            await cp.write_row((
                seq, e.did, e.collection, e.rkey, e.rev, e.action, e.cid,
                None if e.record is None else Jsonb(e.record),
                e.source, e.source_seq, e.verified, e.rejected,
            ))
    await cur.execute(_MOVE)
    count, head = await cur.fetchone()  # type: ignore[misc]
    await cur.execute(f"DELETE FROM {_STAGE}")
    return int(count), head


async def _upsert_repo_states(cur: psycopg.AsyncCursor, states: Sequence[RepoState]) -> None:
    latest = {s.did: s for s in states}  # last write per DID wins, as in stream order
    cols = list(zip(*[(s.did, s.rev, s.data_cid, s.sync_status, s.desync_reason) for s in latest.values()],
                    strict=True))
    await cur.execute(_UPSERT_REPO_STATE, [list(c) for c in cols])


async def record_rejects(conn: psycopg.AsyncConnection, rejects: Sequence[Reject],
                         cursor: tuple[str, int] | None = None) -> None:
    """Keep frames set aside (and the cursor moved past them) when there is nothing else to append."""
    await append_batch(conn, (), cursor=cursor, rejects=rejects)
