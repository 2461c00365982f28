"""file_id → candidate tracks → where the bytes come from (a pure decision, then I/O in the route).

Fallback order for a track that is not support-gated:
1. our mirrored copy (served from disk with Range, or 307 to the S3 URL);
2. 307 to the artist's PDS `com.atproto.sync.getBlob`, unless the PDS told us the blob is gone
   or served bytes that don't match the CID;
3. 307 to `audioUrl` when it is https on the allow-list and the checker hasn't found it dead;
4. 404.
A support-gated track is never served from our copies or the PDS: 307 to its gated `audioUrl`
(plyr.fm checks the supporter) when that is on the allow-list, else 402. When one blob is shared
by gated and ungated tracks, the ungated ones decide: those bytes are public anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import psycopg

from appview.playback.ids import FileRef
from core.blobstore.playability import allowed_audio_url, pds_source_dead
from core.db.schema import PLYR_FILE_ID_REGEX

_SELECT = """
SELECT t.id, t.did, t.support_gate IS NOT NULL, t.audio_blob_cid, coalesce(b.mime, t.audio_blob_mime),
       b.state, b.reason, b.store, a.pds, t.audio_url, coalesce(u.ok = false, false), coalesce(a.active, true)
FROM track t
LEFT JOIN blob b ON b.cid = t.audio_blob_cid
LEFT JOIN actor a ON a.did = t.did
LEFT JOIN audio_url_check u ON u.url = t.audio_url
"""
_WHERE = {
    "blob": "WHERE t.audio_blob_cid = %s",
    "plyr": f"WHERE substring(t.audio_url FROM '{PLYR_FILE_ID_REGEX}') = %s",
    "track": "WHERE t.id = %s::bigint",
}
_ORDER = " ORDER BY (t.support_gate IS NOT NULL), t.id DESC LIMIT 50"


@dataclass(frozen=True)
class Candidate:
    track_id: int
    did: str
    gated: bool
    blob_cid: str | None
    blob_mime: str | None
    blob_state: str | None
    blob_reason: str | None
    blob_store: str | None
    pds: str | None
    audio_url: str | None
    url_dead: bool
    active: bool


@dataclass(frozen=True)
class FromMirror:
    cid: str
    mime: str | None


@dataclass(frozen=True)
class RedirectTo:
    url: str
    source: str  # pds | url | gated_url


@dataclass(frozen=True)
class Refuse:
    status: int
    error: str
    message: str


Decision = FromMirror | RedirectTo | Refuse

NOT_FOUND = Refuse(404, "NotFound", "no audio with this id")


async def candidates(conn: psycopg.AsyncConnection, ref: FileRef) -> list[Candidate]:
    async with conn.cursor() as cur:
        await cur.execute(_SELECT + _WHERE[ref.kind] + _ORDER, (ref.value,))
        return [Candidate(*row) for row in await cur.fetchall()]


def get_blob_url(pds: str | None, did: str, cid: str) -> str | None:
    if not pds or urlsplit(pds).scheme not in ("https", "http"):
        return None
    return f"{pds.rstrip('/')}/xrpc/com.atproto.sync.getBlob?{urlencode({'did': did, 'cid': cid})}"


def decide(cands: list[Candidate], store_kind: str, hosts: tuple[str, ...], *, skip_mirror: bool = False
           ) -> Decision:
    live = [c for c in cands if c.active]
    if not live:
        return NOT_FOUND
    open_ = [c for c in live if not c.gated]
    if not open_:
        for c in live:
            if allowed_audio_url(c.audio_url, hosts) and not c.url_dead:
                return RedirectTo(c.audio_url, "gated_url")  # type: ignore[arg-type]
        return Refuse(402, "SupportRequired", "this track is for the artist's supporters; no gated audio URL "
                                              "is available to check support")
    if not skip_mirror:
        for c in open_:
            if c.blob_cid and c.blob_state == "mirrored" and c.blob_store == store_kind:
                return FromMirror(c.blob_cid, c.blob_mime)
    for c in open_:
        if c.blob_cid and not pds_source_dead(c.blob_state, c.blob_reason) and (
                url := get_blob_url(c.pds, c.did, c.blob_cid)):
            return RedirectTo(url, "pds")
    for c in open_:
        if allowed_audio_url(c.audio_url, hosts) and not c.url_dead:
            return RedirectTo(c.audio_url, "url")  # type: ignore[arg-type]
    return Refuse(404, "NotFound", "every source of this audio is gone")
