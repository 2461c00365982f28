"""Read the log back in `seq` order (what the projector tails)."""

from __future__ import annotations

import psycopg

from core.events import LoggedEvent, LoggedRecord, LoggedRepo

_RECORDS = """
SELECT seq, did, collection, rkey, rev, action, cid, record, verified, rejected, received_at
FROM record_event WHERE seq > %s ORDER BY seq LIMIT %s
"""
_REPOS = """
SELECT seq, did, kind, rev, payload, received_at
FROM repo_event WHERE seq > %s ORDER BY seq LIMIT %s
"""


async def read_after(conn: psycopg.AsyncConnection, position: int, limit: int) -> list[LoggedEvent]:
    """Up to `limit` events with seq > position, merged from both log tables in seq order.

    Both tables are read with the same limit; the merged page stops at the smaller of the two
    last seqs of a full page, so no event is skipped between pages.
    """
    async with conn.cursor() as cur:
        await cur.execute(_RECORDS, (position, limit))
        records = [LoggedRecord(*row) for row in await cur.fetchall()]
        await cur.execute(_REPOS, (position, limit))
        repos = [LoggedRepo(*row) for row in await cur.fetchall()]
    bound: int | None = None
    if len(records) == limit:
        bound = records[-1].seq
    if len(repos) == limit:
        bound = repos[-1].seq if bound is None else min(bound, repos[-1].seq)
    merged: list[LoggedEvent] = [*records, *repos]
    if repos:
        merged.sort(key=lambda e: e.seq)
    if bound is not None:
        merged = [e for e in merged if e.seq <= bound]
    return merged

