"""fm.plyr.like → `like`."""

from __future__ import annotations

from typing import Any

import psycopg

from ingester.projection.base import Put, sort_at
from ingester.projection.writes import by_freshness, delete_keys, upsert_rows

COLUMNS = ("uri", "did", "rkey", "cid", "subject_uri", "subject_cid", "created_at", "indexed_at", "sort_at")
TYPES = ("text", "text", "text", "text", "text", "text", "text", "timestamptz", "timestamptz")


def row(put: Put) -> tuple[Any, ...]:
    e = put.event
    r = e.record or {}
    subject = r["subject"]
    return (e.uri, e.did, e.rkey, e.cid, subject["uri"], subject["cid"], r["createdAt"], put.created_at,
            sort_at(r["createdAt"], put.created_at))


class LikeProjector:
    collection = "fm.plyr.like"

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        await delete_keys(cur, "like", "uri", deleted_uris)
        rows, fresh = by_freshness(puts, row)
        await upsert_rows(cur, "like", COLUMNS, TYPES, rows, ("uri",), keep=("indexed_at",), fresh=fresh)

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        await cur.execute('DELETE FROM "like" WHERE did = %s', (did,))
