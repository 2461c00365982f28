"""fm.plyr.track → `track`."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingester.projection.base import Put, sort_at
from ingester.projection.writes import by_freshness, delete_keys, upsert_rows

COLUMNS = (
    "id", "uri", "did", "rkey", "cid", "rev", "title", "artist", "album", "duration", "file_type",
    "audio_url", "audio_blob_cid", "audio_blob_mime", "audio_blob_size", "image_url", "description",
    "features", "support_gate", "self_labels", "created_at", "indexed_at", "record", "sort_at",
)
TYPES = (
    "int8", "text", "text", "text", "text", "text", "text", "text", "text", "int8", "text",
    "text", "text", "text", "int8", "text", "text",
    "jsonb", "jsonb", "jsonb", "text", "timestamptz", "jsonb", "timestamptz",
)


def blob_cid(blob: Any) -> str | None:
    if not isinstance(blob, dict):
        return None
    ref = blob.get("ref")
    if isinstance(ref, dict) and isinstance(ref.get("$link"), str):
        link: str = ref["$link"]
        return link
    legacy = blob.get("cid")  # pre-2023 blob shape {cid, mimeType}
    return legacy if isinstance(legacy, str) else None


def self_labels(record: dict[str, Any]) -> list[str]:
    labels = record.get("labels")
    if not isinstance(labels, dict):
        return []
    return [v["val"] for v in labels.get("values", []) if isinstance(v, dict) and "val" in v]


def row(put: Put) -> tuple[Any, ...]:
    e = put.event
    r = e.record or {}
    blob = r.get("audioBlob")
    gate = r.get("supportGate")
    return (
        put.item_id, e.uri, e.did, e.rkey, e.cid, e.rev, r["title"], r["artist"], r.get("album"),
        r.get("duration"), r["fileType"], r.get("audioUrl"), blob_cid(blob),
        blob.get("mimeType") if isinstance(blob, dict) else None,
        blob.get("size") if isinstance(blob, dict) else None,
        r.get("imageUrl"), r.get("description"), Jsonb(r.get("features") or []),
        Jsonb(gate) if gate is not None else None, Jsonb(self_labels(r)), r["createdAt"],
        put.created_at, Jsonb(r), sort_at(r["createdAt"], put.created_at),
    )


class TrackProjector:
    collection = "fm.plyr.track"

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        await delete_keys(cur, "track", "uri", deleted_uris)
        rows, fresh = by_freshness(puts, row)
        await upsert_rows(cur, "track", COLUMNS, TYPES, rows, ("uri",), keep=("id", "indexed_at"), fresh=fresh)

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        await cur.execute("DELETE FROM track WHERE did = %s", (did,))
