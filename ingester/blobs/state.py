"""The `blob` table: discovery from the track projection, claims, outcomes, reference counting.

A blob's references are the live `track` rows whose `audio_blob_cid` is its CID, counted at the
moment of release under the projector lock: no projector step can add a reference between the
check and the state change, and nothing but that check ever releases a blob.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import psycopg

from core.db.connect import PROJECTOR_LOCK

_REFERENCED = "EXISTS (SELECT 1 FROM track t WHERE t.audio_blob_cid = b.cid)"

_DISCOVER = """
INSERT INTO blob (cid, state, size, mime)
SELECT DISTINCT ON (t.audio_blob_cid) t.audio_blob_cid, 'pending', t.audio_blob_size, t.audio_blob_mime
FROM track t
WHERE t.audio_blob_cid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blob b WHERE b.cid = t.audio_blob_cid)
ORDER BY t.audio_blob_cid, t.id DESC
ON CONFLICT (cid) DO NOTHING
"""
_REVIVE = f"""
UPDATE blob b SET state = 'pending', reason = NULL, attempts = 0, next_attempt_at = now(),
    unreferenced_since = NULL, updated_at = now()
WHERE b.state = 'released' AND {_REFERENCED}
"""
_REREFERENCED = f"UPDATE blob b SET unreferenced_since = NULL WHERE b.unreferenced_since IS NOT NULL AND {_REFERENCED}"
_UNREFERENCED = f"""
UPDATE blob b SET unreferenced_since = now()
WHERE b.unreferenced_since IS NULL AND b.state <> 'released' AND NOT {_REFERENCED}
"""
# The store changed (e.g. local → S3): copies in the old store no longer serve; mirror again.
_OTHER_STORE = """
UPDATE blob SET state = 'pending', reason = 'store_changed', attempts = 0, next_attempt_at = now(),
    updated_at = now()
WHERE state = 'mirrored' AND store IS DISTINCT FROM %s
"""
_CLAIM = """
SELECT b.cid, b.attempts, b.state, b.mime, r.did, a.pds
FROM blob b
CROSS JOIN LATERAL (
    SELECT t.did FROM track t WHERE t.audio_blob_cid = b.cid ORDER BY t.id DESC LIMIT 1
) r
LEFT JOIN actor a ON a.did = r.did
WHERE b.state IN ('pending', 'failed', 'gone') AND b.next_attempt_at <= now() AND b.cid <> ALL(%s)
ORDER BY b.next_attempt_at
LIMIT %s
"""
_RELEASE = f"""
UPDATE blob b SET state = 'released', reason = NULL, updated_at = now()
WHERE b.cid = ANY(%s) AND b.state <> 'released' AND NOT {_REFERENCED}
RETURNING b.cid, b.store
"""


@dataclass(frozen=True)
class Due:
    cid: str
    attempts: int
    state: str
    mime: str | None
    did: str
    pds: str | None


async def reconcile(conn: psycopg.AsyncConnection, store_kind: str) -> None:
    """Bring the blob table in line with the track projection (idempotent, set-based)."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(_DISCOVER)
        await cur.execute(_REVIVE)
        await cur.execute(_REREFERENCED)
        await cur.execute(_UNREFERENCED)
        await cur.execute(_OTHER_STORE, (store_kind,))


async def claim(conn: psycopg.AsyncConnection, limit: int, exclude: list[str]) -> list[Due]:
    async with conn.cursor() as cur:
        await cur.execute(_CLAIM, (exclude, limit))
        return [Due(*row) for row in await cur.fetchall()]


async def mark_mirrored(conn: psycopg.AsyncConnection, cid: str, size: int, store: str,
                        mime: str | None) -> bool:
    """False when the blob was released meanwhile (the caller then removes its copy)."""
    cur = await conn.execute(
        "UPDATE blob SET state = 'mirrored', reason = NULL, size = %s, store = %s, mime = coalesce(mime, %s),"
        " mirrored_at = now(), checked_at = now(), attempts = attempts + 1, updated_at = now()"
        " WHERE cid = %s AND state <> 'released'",
        (size, store, mime, cid),
    )
    return cur.rowcount == 1


async def mark_failed(conn: psycopg.AsyncConnection, cid: str, state: str, reason: str,
                      retry_in: timedelta | None) -> None:
    """`retry_in` None: don't retry on our own (terminal until the blob is referenced anew)."""
    await conn.execute(
        "UPDATE blob SET state = %s, reason = %s, attempts = attempts + 1, updated_at = now(),"
        " next_attempt_at = CASE WHEN %s::interval IS NULL THEN 'infinity' ELSE now() + %s::interval END"
        " WHERE cid = %s AND state <> 'released'",
        (state, reason[:300], retry_in, retry_in, cid),
    )


async def due_releases(conn: psycopg.AsyncConnection, grace: timedelta, limit: int = 500) -> list[str]:
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT cid FROM blob WHERE unreferenced_since <= now() - %s::interval AND state <> 'released'"
            " ORDER BY unreferenced_since LIMIT %s", (grace, limit))
        return [r[0] for r in await cur.fetchall()]


async def release(conn: psycopg.AsyncConnection, cids: list[str]) -> list[tuple[str, str | None]]:
    """Mark still-unreferenced blobs released; returns (cid, store) of those to delete from the store."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
        await cur.execute(_RELEASE, (cids,))
        return [(r[0], r[1]) for r in await cur.fetchall()]


async def forget_store(conn: psycopg.AsyncConnection, cid: str) -> None:
    """The released blob's bytes are gone from the store."""
    await conn.execute("UPDATE blob SET store = NULL, size = NULL WHERE cid = %s AND state = 'released'", (cid,))


async def released_in_store(conn: psycopg.AsyncConnection, limit: int = 100) -> list[tuple[str, str]]:
    """Released blobs whose deletion from the store didn't happen (crash, store error): retry it."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT cid, store FROM blob WHERE state = 'released' AND store IS NOT NULL LIMIT %s",
                          (limit,))
        return [(r[0], r[1]) for r in await cur.fetchall()]
