"""Label events → `label`: the latest state of each (src, uri, val).

Latest is by the label's own `cts`, ties broken by log order, as the spec says ("a label with the
same src/uri/val and a later cts supersedes"). A negation is stored as `neg = true` rather than
deleted, so an older label replayed afterwards cannot bring it back; `exp` is stored and judged
at read time. Rejected (forged, malformed) labels never get here; unverified ones only when the
projector projects unverified data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from core.events import LoggedLabel
from ingester.projection.writes import upsert_rows

COLUMNS = ("src", "uri", "val", "cid", "neg", "cts", "exp", "seq")
TYPES = ("text", "text", "text", "text", "bool", "timestamptz", "timestamptz", "int8")
_LOAD = """
SELECT l.src, l.uri, l.val, l.cts, l.seq FROM label l
JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(src, uri, val)
  ON l.src = k.src AND l.uri = k.uri AND l.val = k.val
"""
Key = tuple[str, str, str]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def label_row(ev: LoggedLabel) -> tuple[Any, ...] | None:
    """The projection row of an accepted label, or None when its body is unusable."""
    lab = ev.label
    if not isinstance(lab, dict):
        return None
    src, uri, val, cid = lab.get("src"), lab.get("uri"), lab.get("val"), lab.get("cid")
    cts = parse_time(lab.get("cts"))
    exp = parse_time(lab.get("exp")) if lab.get("exp") is not None else None
    if not (isinstance(src, str) and isinstance(uri, str) and isinstance(val, str)) or cts is None:
        return None
    return (src, uri, val, cid if isinstance(cid, str) else None, lab.get("neg") is True, cts, exp, ev.seq)


async def apply_labels(cur: psycopg.AsyncCursor, events: list[LoggedLabel], *, project_unverified: bool) -> int:
    """Fold `events` (log order) into `label`; returns how many were applied."""
    rows = [
        r for ev in events
        if ev.rejected is None and (ev.verified or project_unverified) and (r := label_row(ev)) is not None
    ]
    if not rows:
        return 0
    keys = list({(r[0], r[1], r[2]) for r in rows})
    await cur.execute(_LOAD, [list(c) for c in zip(*keys, strict=True)])
    latest: dict[Key, tuple[datetime, int]] = {(r[0], r[1], r[2]): (r[3], r[4]) for r in await cur.fetchall()}
    out: dict[Key, tuple[Any, ...]] = {}
    for row in rows:
        key = (row[0], row[1], row[2])
        seen = latest.get(key)
        if seen is not None and row[5] < seen[0]:
            continue  # an older statement about the same label, arriving late
        latest[key] = (row[5], row[7])
        out[key] = row
    await upsert_rows(cur, "label", COLUMNS, TYPES, list(out.values()), ("src", "uri", "val"))
    return len(out)
