"""app.bsky.actor.profile (rkey `self`, tracked accounts only) → `bsky_profile`.

The record passed lexicon validation (display name ≤ 64 graphemes, description ≤ 256, avatar a png/jpeg
blob ≤ 1 MB), so the columns are bounded; `row` still reads every field defensively, as a record in the log
may come from a future lexicon with looser rules.
"""

from __future__ import annotations

from typing import Any

import psycopg

from core.events import BSKY_PROFILE
from ingester.projection.base import Put
from ingester.projection.tracks import blob_cid
from ingester.projection.writes import upsert_rows

COLUMNS = ("did", "cid", "display_name", "description", "avatar_cid", "avatar_mime", "created_at", "indexed_at")
TYPES = ("text", "text", "text", "text", "text", "text", "text", "timestamptz")


def _text(value: Any) -> str | None:
    # An empty display name is Bluesky's "unset" (clients clear the field that way): fall back, don't blank.
    return value if isinstance(value, str) and value.strip() else None


def row(put: Put) -> tuple[Any, ...]:
    e = put.event
    r = e.record or {}
    avatar = r.get("avatar")
    cid = blob_cid(avatar)
    mime = avatar.get("mimeType") if isinstance(avatar, dict) and cid is not None else None
    return (e.did, e.cid, _text(r.get("displayName")), _text(r.get("description")), cid,
            mime if isinstance(mime, str) else None, _text(r.get("createdAt")), put.created_at)


def _did(uri: str) -> str:
    return uri.removeprefix("at://").partition("/")[0]


class BskyProfileProjector:
    collection = BSKY_PROFILE

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        if deleted_uris:
            await cur.execute("DELETE FROM bsky_profile WHERE did = ANY(%s)",
                              ([_did(u) for u in deleted_uris if u.endswith("/self")],))
        # Validation already refuses other record keys; never let one overwrite the account's profile row.
        rows = [row(p) for p in puts if p.event.rkey == "self"]
        await upsert_rows(cur, "bsky_profile", COLUMNS, TYPES, rows, ("did",), keep=("indexed_at",))

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        await cur.execute("DELETE FROM bsky_profile WHERE did = %s", (did,))
