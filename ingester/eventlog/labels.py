"""Stage ④ for labels: append label events and the labeler cursor in one transaction.

Labels are rare next to record events (a labeler emits a handful per minute), so rows go in with one
multi-row INSERT rather than the COPY path; they draw `seq` from the shared `event_seq` under the
same append lock, so the log stays one total order whose commit order equals `seq` order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from core.db.connect import LOG_APPEND_LOCK, NOTIFY_CHANNEL
from core.events import LabelEvent
from ingester.eventlog.fence import check_fence

_INSERT = """
INSERT INTO label_event (src, uri, val, label, digest, source, source_seq, verified, rejected)
SELECT src, uri, val, label, digest, source, source_seq, verified, rejected
FROM unnest(%s::text[], %s::text[], %s::text[], %s::jsonb[], %s::text[], %s::text[],
                     %s::int8[], %s::bool[], %s::text[])
    WITH ORDINALITY AS t(src, uri, val, label, digest, source, source_seq, verified, rejected, n)
ORDER BY n
ON CONFLICT (digest) DO NOTHING
RETURNING seq
"""
_UPSERT_CURSOR = """
INSERT INTO source_cursor (source, cursor, updated_at) VALUES (%s, %s, now())
ON CONFLICT (source) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()
"""


@dataclass(frozen=True, slots=True)
class LabelAppendResult:
    appended: int
    duplicates: int
    head: int | None


async def append_labels(
    conn: psycopg.AsyncConnection, events: Sequence[LabelEvent], *, cursor: tuple[str, int] | None = None
) -> LabelAppendResult:
    """Append `events` in order (duplicates by digest are dropped) and the source cursor, atomically."""
    seqs: list[int] = []
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOG_APPEND_LOCK,))
        await check_fence(cur)
        if events:
            cols = list(zip(*[
                (e.src, e.uri, e.val, None if e.label is None else Jsonb(e.label), e.digest, e.source,
                 e.source_seq, e.verified, e.rejected)
                for e in events
            ], strict=True))
            await cur.execute(_INSERT, [list(c) for c in cols])
            seqs = [int(r[0]) for r in await cur.fetchall()]
        if cursor is not None:
            await cur.execute(_UPSERT_CURSOR, cursor)
        if seqs:
            await cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, str(max(seqs))))
    return LabelAppendResult(len(seqs), len(events) - len(seqs), max(seqs) if seqs else None)
