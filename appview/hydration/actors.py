"""Actor basics for a page, one query for every DID on it.

Display name: the account's own Bluesky profile (`app.bsky.actor.profile/self`, `bsky_profile`) when it sets
one; else the `artist` string the account last wrote on a track (plyr.fm writes its display name there), else
the handle. Avatar: the Bluesky profile's avatar blob, served by the account's PDS (`avatar_url`), else the
URL of the plyr profile record (`fm.plyr.actor.profile` `avatar`). Description: the Bluesky profile's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from psycopg import AsyncConnection

from core.syntax import is_cid, is_did

INVALID_HANDLE = "handle.invalid"


@dataclass(frozen=True, slots=True)
class ActorBasic:
    did: str
    handle: str
    display_name: str
    avatar_url: str | None
    known: bool  # we hold an identity for this DID (an actor row)
    active: bool = True  # False: deactivated, takendown, suspended or deleted — shown without a handle
    description: str | None = None  # the Bluesky profile's


def avatar_url(pds: str | None, did: str, cid: str | None) -> str | None:
    """The one place avatar URLs are made: the PDS's `com.atproto.sync.getBlob` for the avatar blob, only for
    an https PDS (every URL we serve passes the views' https-only gate, `appview/views/urls.py`; an http PDS is
    local development, whose avatars are not shown), and only for well-formed parts (the DID document and the
    record are the network's, not ours)."""
    if not pds or not cid or not is_cid(cid) or not is_did(did):
        return None
    try:
        parts = urlsplit(pds)
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc or parts.query or parts.fragment:
        return None
    return f"{pds.rstrip('/')}/xrpc/com.atproto.sync.getBlob?{urlencode({'did': did, 'cid': cid})}"


# One actor's basics; needs `d.did` (the DID asked about). The page queries embed it for featured artists.
ACTOR_COLUMNS = """d.did, a.handle, a.pds, p.avatar, a.did IS NOT NULL, coalesce(a.active, true),
       b.display_name, b.avatar_cid, b.description,
       (SELECT t.artist FROM track t WHERE t.did = d.did ORDER BY t.sort_at DESC, t.id DESC LIMIT 1)"""
ACTOR_JOINS = """LEFT JOIN actor a ON a.did = d.did
LEFT JOIN artist_profile p ON p.did = d.did
LEFT JOIN bsky_profile b ON b.did = d.did"""
_SQL = f"""
SELECT {ACTOR_COLUMNS}
FROM unnest(%s::text[]) AS d(did)
{ACTOR_JOINS}
"""


def basic(row: tuple[Any, ...] | list[Any]) -> ActorBasic:
    """An `ACTOR_COLUMNS` row as the views show it."""
    did, handle, pds, plyr_avatar, known, active, bsky_name, avatar_cid, description, artist = row
    if not active:
        # An account that is not active never appears with its handle, name or avatar (surfaces hide
        # its own content; this covers places that merely mention it, e.g. a featured artist).
        return ActorBasic(did, INVALID_HANDLE, INVALID_HANDLE, None, bool(known), False)
    h = handle or INVALID_HANDLE
    return ActorBasic(did, h, bsky_name or artist or (handle or did),
                      avatar_url(pds, did, avatar_cid) or plyr_avatar, bool(known), description=description)


async def actors(conn: AsyncConnection, dids: list[str]) -> dict[str, ActorBasic]:
    if not dids:
        return {}
    rows = await (await conn.execute(_SQL, (sorted(set(dids)),))).fetchall()
    return {row[0]: basic(row) for row in rows}
