"""fm.plyr.actor.profile (rkey `self`) → `artist_profile`."""

from __future__ import annotations

from typing import Any

import psycopg

from ingester.projection.base import Put
from ingester.projection.writes import upsert_rows

COLUMNS = ("did", "uri", "cid", "bio", "avatar", "created_at", "updated_at", "indexed_at")
TYPES = ("text", "text", "text", "text", "text", "text", "text", "timestamptz")


def row(put: Put) -> tuple[Any, ...]:
    e = put.event
    r = e.record or {}
    return (e.did, e.uri, e.cid, r.get("bio"), r.get("avatar"), r["createdAt"], r.get("updatedAt"),
            put.created_at)


class ProfileProjector:
    collection = "fm.plyr.actor.profile"

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        if deleted_uris:
            await cur.execute("DELETE FROM artist_profile WHERE uri = ANY(%s)", (deleted_uris,))
        await upsert_rows(cur, "artist_profile", COLUMNS, TYPES, [row(p) for p in puts], ("did",),
                          keep=("indexed_at",))

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        await cur.execute("DELETE FROM artist_profile WHERE did = %s", (did,))
