"""fm.plyr.comment → `comment` (timed: `timestampMs` is a playback position)."""

from __future__ import annotations

from typing import Any

import psycopg

from ingester.projection.base import Put, sort_at
from ingester.projection.writes import by_freshness, delete_keys, upsert_rows

COLUMNS = (
    "uri", "did", "rkey", "cid", "subject_uri", "subject_cid", "text", "timestamp_ms", "created_at",
    "updated_at", "indexed_at", "sort_at", "id",
)
TYPES = (
    "text", "text", "text", "text", "text", "text", "text", "int8", "text", "text", "timestamptz", "timestamptz",
    "int8",
)


def row(put: Put) -> tuple[Any, ...]:
    e = put.event
    r = e.record or {}
    subject = r["subject"]
    return (
        e.uri, e.did, e.rkey, e.cid, subject["uri"], subject["cid"], r["text"], r["timestampMs"],
        r["createdAt"], r.get("updatedAt"), put.created_at, sort_at(r["createdAt"], put.created_at),
        put.item_id,
    )


class CommentProjector:
    collection = "fm.plyr.comment"

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        await delete_keys(cur, "comment", "uri", deleted_uris)
        rows, fresh = by_freshness(puts, row)
        await upsert_rows(cur, "comment", COLUMNS, TYPES, rows, ("uri",), keep=("id", "indexed_at"), fresh=fresh)

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        await cur.execute("DELETE FROM comment WHERE did = %s", (did,))
