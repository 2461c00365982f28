"""fm.plyr.list → `list` + ordered `list_item` rows (album, playlist, liked)."""

from __future__ import annotations

from typing import Any

import psycopg

from ingester.projection.base import Put, sort_at
from ingester.projection.writes import by_freshness, delete_keys, upsert_rows

COLUMNS = (
    "id", "uri", "did", "rkey", "cid", "name", "list_type", "item_count", "created_at", "updated_at",
    "indexed_at", "sort_at",
)
TYPES = ("int8", "text", "text", "text", "text", "text", "text", "int4", "text", "text", "timestamptz", "timestamptz")
ITEM_COLUMNS = ("list_uri", "position", "subject_uri", "subject_cid")
ITEM_TYPES = ("text", "int4", "text", "text")


def row(put: Put) -> tuple[Any, ...]:
    e = put.event
    r = e.record or {}
    return (
        put.item_id, e.uri, e.did, e.rkey, e.cid, r.get("name"), r.get("listType"), len(r["items"]),
        r["createdAt"], r.get("updatedAt"), put.created_at, sort_at(r["createdAt"], put.created_at),
    )


def item_rows(put: Put) -> list[tuple[Any, ...]]:
    items = (put.event.record or {})["items"]
    return [(put.event.uri, i, it["subject"]["uri"], it["subject"]["cid"]) for i, it in enumerate(items)]


class ListProjector:
    collection = "fm.plyr.list"

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        await delete_keys(cur, "list", "uri", deleted_uris)
        await delete_keys(cur, "list_item", "list_uri", deleted_uris + [p.event.uri for p in puts])
        rows, fresh = by_freshness(puts, row)
        await upsert_rows(cur, "list", COLUMNS, TYPES, rows, ("uri",), keep=("id", "indexed_at"), fresh=fresh)
        # Every put list's items were deleted just above: none of these can conflict.
        await upsert_rows(cur, "list_item", ITEM_COLUMNS, ITEM_TYPES, [], ("list_uri", "position"),
                          fresh=[r for p in puts for r in item_rows(p)])

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        await cur.execute(
            "DELETE FROM list_item WHERE list_uri IN (SELECT uri FROM list WHERE did = %s)", (did,)
        )
        await cur.execute("DELETE FROM list WHERE did = %s", (did,))
