"""Hydrate a page of track ids: one query for the tracks with their authors, counts and albums, one
for featured artists, one for the viewer's likes — pipelined, whatever the page size."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from psycopg import AsyncConnection

from appview.hydration.actors import ACTOR_COLUMNS, ACTOR_JOINS, INVALID_HANDLE, ActorBasic, actors, avatar_url, basic
from appview.playback import default_audio_hosts
from appview.query import cursor as cursors
from appview.query.albums import TRACK_ALBUM_COLUMNS, TRACK_ALBUM_SQL
from appview.query.counters import track_plays
from appview.query.moderation import EFFECTIVE
from core.blobstore.playability import PLAYABILITY_SQL, host_patterns

_COLUMNS = f"""t.id, t.uri, t.cid, t.did, t.rkey, t.title, t.artist, t.album, t.duration, t.file_type,
       t.audio_url, t.audio_blob_cid, t.audio_blob_mime, t.audio_blob_size, t.image_url, t.description,
       t.features, t.support_gate, t.self_labels, t.created_at, t.sort_at, t.indexed_at,
       a.handle, a.pds, p.avatar, bp.display_name, bp.avatar_cid,
       coalesce(tc.likes, 0), coalesce(tc.comments, 0),
       {TRACK_ALBUM_COLUMNS}, {PLAYABILITY_SQL},
       {track_plays('t', 'tc')},
       (SELECT coalesce(array_agg(DISTINCT lab_.val ORDER BY lab_.val), '{{}}') FROM label lab_
         WHERE lab_.uri IN (t.uri, t.did) AND {EFFECTIVE})"""
_JOINS = f"""LEFT JOIN actor a ON a.did = t.did
LEFT JOIN artist_profile p ON p.did = t.did
LEFT JOIN bsky_profile bp ON bp.did = t.did
LEFT JOIN track_counter tc ON tc.uri = t.uri
LEFT JOIN blob b ON b.cid = t.audio_blob_cid
LEFT JOIN audio_url_check u ON u.url = t.audio_url
{TRACK_ALBUM_SQL}"""
_TRACKS = f"""
SELECT {_COLUMNS}
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS page(id, ord)
JOIN track t ON t.id = page.id
{_JOINS}ORDER BY page.ord
"""
# The actor basics of a track's featured artists, in the same statement (None when it features nobody).
_FEATURED = f"""CASE WHEN jsonb_typeof(t.features) = 'array' AND t.features <> '[]'::jsonb THEN (
    SELECT json_agg(json_build_array({ACTOR_COLUMNS}))
    FROM (SELECT DISTINCT f_->>'did' AS did FROM jsonb_array_elements(t.features) f_
          WHERE jsonb_typeof(f_->'did') = 'string') d
    {ACTOR_JOINS}) END"""
_LIKED = 'EXISTS (SELECT 1 FROM "like" vl_ WHERE vl_.did = %(viewer)s AND vl_.subject_uri = t.uri)'


@functools.lru_cache(maxsize=512)  # SQL text built once per shape, not per request
def page_sql(where: str, *, limit: int, keyset: bool, viewer: bool) -> str:
    """One statement for a whole feed page: the keyset skeleton (`where` over track `t`, plus one row to
    tell whether there is more), each track hydrated into one JSON array (its `card`: every column the view
    needs, featured artists included), and the viewer's like and ownership.

    The limit is part of the text, not a parameter: with `LIMIT $n` the generic plan of the prepared
    statement assumes a tenth of the table comes back, so Postgres would replan it on every execution."""
    after = " AND (t.sort_at, t.id) < (%(c_at)s, %(c_id)s)" if keyset else ""
    return f"""
WITH page AS MATERIALIZED (
    SELECT t.id FROM track t WHERE {where}{after} ORDER BY t.sort_at DESC, t.id DESC LIMIT {int(limit) + 1}
)
SELECT {_row(viewer)}
FROM page JOIN track t ON t.id = page.id
{_JOINS}ORDER BY t.sort_at DESC, t.id DESC
"""


@functools.lru_cache(maxsize=64)
def one_sql(where: str, *, viewer: bool) -> str:
    """One track as a page row (`where` over track `t` names at most one: a unique key), in one statement."""
    return f"SELECT {_row(viewer)}\nFROM track t\n{_JOINS}WHERE {where}"


def _row(viewer: bool) -> str:
    """A `PageRow`'s columns over track `t`: parameter `viewer` when there is one."""
    mine = "t.did = %(viewer)s" if viewer else "false"
    return f"t.id, t.sort_at, json_build_array({_COLUMNS}, {_FEATURED})::text, {_LIKED if viewer else 'false'}, {mine}"


_VIEWER_LIKES = 'SELECT DISTINCT subject_uri FROM "like" WHERE did = %s AND subject_uri = ANY(%s)'


@dataclass(frozen=True, slots=True)
class PageRow:
    id: int
    sort_at: datetime
    card: str  # JSON: the `_COLUMNS` of the track, then its featured artists' `ACTOR_COLUMNS` rows (or null)
    liked: bool  # by the viewer
    owned: bool  # by the viewer


def track_from_card(card: str, liked: bool) -> TrackData:
    """The TrackData a page row's card describes (what `hydrate` builds from its own queries)."""
    row = orjson.loads(card)
    t = _track(tuple(row[:-1]))
    t.features = _features(t.features_raw, {b.did: b for b in map(basic, row[-1] or ())})
    t.is_liked = liked
    t.labels = sorted(set(t.self_labels) | set(t.operator_labels))
    return t


@dataclass(frozen=True, slots=True)
class AlbumRef:
    """The album a track is filed under (appview/query/albums.py has the rule)."""

    id: int
    uri: str | None  # the album list record; None for an album derived from track names alone
    name: str
    image_url: str | None
    slug: str = ""


@dataclass(slots=True)
class TrackData:
    id: int
    uri: str
    cid: str
    did: str
    rkey: str
    title: str
    artist: str
    album_name: str | None
    duration: int | None
    file_type: str
    audio_url: str | None
    audio_blob_cid: str | None
    audio_blob_mime: str | None
    audio_blob_size: int | None
    image_url: str | None
    description: str | None
    features_raw: list[Any]
    support_gate: dict[str, Any] | None
    self_labels: list[str]
    created_at: str
    sort_at: Any
    indexed_at: Any
    handle: str
    pds: str | None
    avatar_url: str | None
    like_count: int
    comment_count: int
    album: AlbumRef | None
    features: list[ActorBasic] = field(default_factory=list)
    is_liked: bool = False
    play_count: int = 0
    labels: list[str] = field(default_factory=list)
    playability: str = "dead"
    operator_labels: list[str] = field(default_factory=list)
    bsky_display_name: str | None = None  # the artist's Bluesky profile display name, when set

    @property
    def artist_display_name(self) -> str:
        """The artist's name as the views show it: their Bluesky display name, else this track's `artist`."""
        return self.bsky_display_name or self.artist


@functools.cache
def _hosts() -> list[str]:
    return list(host_patterns(default_audio_hosts()))


def _track(row: tuple[Any, ...]) -> TrackData:
    (id_, uri, cid, did, rkey, title, artist, album, duration, file_type, audio_url, blob_cid, blob_mime,
     blob_size, image_url, description, features, gate, self_labels, created_at, sort_at, indexed_at,
     handle, pds, plyr_avatar, bsky_name, avatar_cid, likes, comments, alb_id, alb_uri, alb_name, alb_image,
     alb_slug, playability, plays, operator_labels) = row
    album_ref = AlbumRef(alb_id, alb_uri, alb_name, alb_image, alb_slug) if alb_id is not None else None
    return TrackData(id_, uri, cid, did, rkey, title, artist, album, duration, file_type, audio_url, blob_cid,
                     blob_mime, blob_size, image_url, description, features or [], gate, self_labels or [],
                     created_at, sort_at, indexed_at, handle or INVALID_HANDLE, pds,
                     avatar_url(pds, did, avatar_cid) or plyr_avatar, likes, comments,
                     album_ref, playability=playability, play_count=int(plays),
                     operator_labels=list(operator_labels or []), bsky_display_name=bsky_name)


def _feature_dids(tracks: list[TrackData]) -> list[str]:
    return [f["did"] for t in tracks for f in t.features_raw if isinstance(f, dict) and isinstance(f.get("did"), str)]


def _features(raw: list[Any], known: dict[str, ActorBasic]) -> list[ActorBasic]:
    out: list[ActorBasic] = []
    for f in raw:
        if not isinstance(f, dict) or not isinstance(f.get("did"), str):
            continue
        basic = known.get(f["did"])
        if basic is not None and basic.known:
            if basic.active:
                out.append(basic)
            # else: deactivated, taken down or deleted — dropped, never shown with the record's snapshot
        elif isinstance(f.get("handle"), str):
            # Not an account we index: the record's own snapshot is the best we have.
            name = f.get("displayName") or f.get("display_name") or f["handle"]
            out.append(ActorBasic(f["did"], f["handle"], str(name), None, False))
        # else: unresolvable and no snapshot → dropped, as plyr.fm does
    return out


async def hydrate(conn: AsyncConnection, ids: list[int], viewer: str | None) -> list[TrackData]:
    """Tracks for `ids` in that order (ids that vanished meanwhile are skipped)."""
    if not ids:
        return []
    async with conn.pipeline():
        params = {"ids": ids, "audio_hosts": _hosts()}
        tracks = [_track(r) for r in await (await conn.execute(_TRACKS, params)).fetchall()]
        uris = [t.uri for t in tracks]
        feature_dids = _feature_dids(tracks)
        known = await actors(conn, feature_dids) if feature_dids else {}
        liked: set[str] = set()
        if viewer:
            cur = await conn.execute(_VIEWER_LIKES, (viewer, uris))
            liked = {r[0] for r in await cur.fetchall()}
    for t in tracks:
        t.features = _features(t.features_raw, known)
        t.is_liked = t.uri in liked
        t.labels = sorted(set(t.self_labels) | set(t.operator_labels))
    return tracks


async def one(conn: AsyncConnection, where: str, params: dict[str, Any], viewer: str | None) -> TrackData | None:
    """The track `where` names (see `one_sql`), hydrated in one round trip; None when there is none."""
    sql = one_sql(where, viewer=viewer is not None)
    args = {**params, "viewer": viewer, "audio_hosts": _hosts()}
    row = await (await conn.execute(sql, args, prepare=True)).fetchone()
    return None if row is None else track_from_card(row[2], row[3])


async def page(conn: AsyncConnection, where: str, params: dict[str, Any], cursor: str | None, limit: int,
               viewer: str | None) -> tuple[list[PageRow], str | None]:
    """A feed page in one round trip: its rows, and the cursor of the next page (None: the last)."""
    c = cursors.decode(cursor)
    sql = page_sql(where, limit=limit, keyset=c is not None, viewer=viewer is not None)
    args = {**params, "viewer": viewer, "audio_hosts": _hosts()}
    if c is not None:
        args |= {"c_at": c.at, "c_id": c.id}
    # Prepared at once (not after psycopg's 5 plain runs): the plan of this statement costs more than running it.
    rows = [PageRow(*r) for r in await (await conn.execute(sql, args, prepare=True)).fetchall()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, cursors.encode(rows[-1].sort_at, rows[-1].id) if more and rows else None
