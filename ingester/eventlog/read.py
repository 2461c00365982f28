"""Read the log back in `seq` order (what the projector tails)."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_loads

from core.events import LoggedEvent, LoggedLabel, LoggedRecord, LoggedRepo

_HEAD = """
SELECT greatest((SELECT max(seq) FROM record_event), (SELECT max(seq) FROM repo_event),
                (SELECT max(seq) FROM label_event))
"""
_RECORDS = """
SELECT seq, did, collection, rkey, rev, action, cid, record, verified, rejected, received_at
FROM record_event WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s
"""
_REPOS = """
SELECT seq, did, kind, rev, payload, received_at
FROM repo_event WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s
"""
_LABELS = """
SELECT seq, src, uri, val, label, verified, rejected, received_at
FROM label_event WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s
"""


# orjson turns integers beyond 64 bits into floats, and refuses lone surrogates and huge exponents: a text
# with a long digit run (or anything orjson refuses) goes to `json`, so every record reads back exactly as
# `json.loads` gives it (numbers of ≤ 15 digits parse to the same value in both).
_LONG_DIGITS = re.compile(rb"[0-9]{16}")


def _loads(data: str | bytes) -> Any:
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGITS.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


HEAD = _HEAD  # the projector reads it in the round trip that takes its lock (runner.py)


async def read_after(conn: psycopg.AsyncConnection, position: int, limit: int,
                     head: int | None = None) -> list[LoggedEvent]:
    """Up to `limit` events with seq > position, merged from the log tables in seq order.

    Every table is read with the same limit; the merged page stops at the smallest last seq of a
    full page, so no event is skipped between pages. Under READ COMMITTED each statement sees its own
    snapshot, so an append committing between two of them could show a later table's rows without
    an earlier table's: every statement is bounded by the head read first (commit order = seq order,
    so everything at or below a visible seq is already committed). `head`: read by the caller already.
    """
    if head is None:
        async with conn.cursor() as cur:
            await cur.execute(_HEAD)
            row = await cur.fetchone()
            head = int(row[0]) if row and row[0] is not None else 0
    if head <= position:
        return []
    # The three pages are independent once bounded: one round trip for all of them.
    cursors = [conn.cursor() for _ in range(3)]
    try:
        for cur in cursors:
            set_json_loads(_loads, cur)
        async with conn.pipeline():
            for cur, sql in zip(cursors, (_RECORDS, _REPOS, _LABELS), strict=True):
                await cur.execute(sql, (position, head, limit))
        records = [LoggedRecord(*row) for row in await cursors[0].fetchall()]
        repos = [LoggedRepo(*row) for row in await cursors[1].fetchall()]
        labels = [LoggedLabel(*row) for row in await cursors[2].fetchall()]
    finally:
        for cur in cursors:
            await cur.close()
    bound: int | None = None
    for page in (records, repos, labels):
        if len(page) == limit:
            bound = page[-1].seq if bound is None else min(bound, page[-1].seq)
    merged: list[LoggedEvent] = [*records, *repos, *labels]
    if repos or labels:
        merged.sort(key=lambda e: e.seq)
    if bound is not None:
        merged = [e for e in merged if e.seq <= bound]
    return merged
