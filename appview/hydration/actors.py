"""Actor basics for a page, one query for every DID on it.

Display name: the network has no plyr display name (plyr.fm keeps it in its own database); the
closest honest value is the `artist` string the account last wrote on a track (plyr.fm writes its
display name there), else the handle.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection

INVALID_HANDLE = "handle.invalid"


@dataclass(frozen=True, slots=True)
class ActorBasic:
    did: str
    handle: str
    display_name: str
    avatar_url: str | None
    known: bool  # we hold an identity for this DID (an actor row)
    active: bool = True  # False: deactivated, takendown, suspended or deleted — shown without a handle


_SQL = """
SELECT d.did, a.handle, p.avatar, a.did IS NOT NULL, coalesce(a.active, true),
       (SELECT t.artist FROM track t WHERE t.did = d.did ORDER BY t.sort_at DESC, t.id DESC LIMIT 1)
FROM unnest(%s::text[]) AS d(did)
LEFT JOIN actor a ON a.did = d.did
LEFT JOIN artist_profile p ON p.did = d.did
"""


async def actors(conn: AsyncConnection, dids: list[str]) -> dict[str, ActorBasic]:
    if not dids:
        return {}
    rows = await (await conn.execute(_SQL, (sorted(set(dids)),))).fetchall()
    out: dict[str, ActorBasic] = {}
    for did, handle, avatar, known, active, artist in rows:
        if not active:
            # An account that is not active never appears with its handle, name or avatar (surfaces hide
            # its own content; this covers places that merely mention it, e.g. a featured artist).
            out[did] = ActorBasic(did, INVALID_HANDLE, INVALID_HANDLE, None, bool(known), False)
            continue
        h = handle or INVALID_HANDLE
        out[did] = ActorBasic(did, h, artist or (handle or did), avatar, bool(known))
    return out
