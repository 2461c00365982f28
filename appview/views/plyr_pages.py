"""Assemble plyr.fm page responses from skeletons: hydrate once per page, then convert."""

from __future__ import annotations

import functools
from typing import Any

import orjson
from psycopg import AsyncConnection

from appview.errors import NotFound
from appview.hydration.actors import ActorBasic
from appview.hydration.tracks import hydrate, track_from_card
from appview.hydration.tracks import one as hydrate_one
from appview.hydration.tracks import page as hydrate_page
from appview.query import albums as album_q
from appview.query.albums import AlbumRow
from appview.query.lists import ListRow
from appview.views.formats import iso, thumbnail
from appview.views.plyr_models import (
    AlbumListItem,
    ArtistAlbum,
    PlaylistResponse,
    TrackResponse,
    UserSummary,
)
from appview.views.plyr_tracks import track_dict, track_response


async def tracks(conn: AsyncConnection, ids: list[int], viewer: str | None, *, with_record_url: bool = False,
                 ) -> list[TrackResponse]:
    return [track_response(t, viewer, with_record_url=with_record_url) for t in await hydrate(conn, ids, viewer)]


async def track_json(conn: AsyncConnection, where: str, params: dict[str, Any], viewer: str | None) -> bytes | None:
    """The `TrackResponse` of the one track `where` names as JSON bytes, or None when it is gone or hidden: one
    statement, no model validation, orjson (`track_dict` is the model's serialisation field for field)."""
    found = await hydrate_one(conn, where, params, viewer)
    return orjson.dumps(track_dict(found, viewer)) if found is not None else None


async def feed_page_json(conn: AsyncConnection, where: str, params: dict[str, Any], cursor: str | None, limit: int,
                         viewer: str | None) -> bytes:
    """A `TracksListResponse` page as JSON bytes: one statement, no model validation, orjson (the hot path)."""
    rows, nxt = await hydrate_page(conn, where, params, cursor, limit, viewer)
    cards = b",".join(_card(r.card, r.liked, r.owned) for r in rows)
    return b'{"tracks":[' + cards + b'],"next_cursor":' + orjson.dumps(nxt) + \
        (b',"has_more":true}' if nxt is not None else b',"has_more":false}')


@functools.lru_cache(maxsize=8192)
def _card(card: str, liked: bool, owned: bool) -> bytes:
    """One track of a feed page, serialised. A pure function of the row the database returned for it (every
    value the view shows is in `card`) and of the viewer's relation to it: each distinct row is rendered
    once, and every request still reads the current rows from Postgres."""
    t = track_from_card(card, liked)
    return orjson.dumps(track_dict(t, t.did if owned else None, with_record_url=True))


def user(a: ActorBasic) -> UserSummary:
    return UserSummary(did=a.did, handle=a.handle, display_name=a.display_name, avatar_url=a.avatar_url)


def list_name(row: ListRow) -> str:
    return row.name or ("Liked Tracks" if row.list_type == "liked" else "untitled")


async def album_by_slug(conn: AsyncConnection, did: str, slug: str) -> AlbumRow:
    """An artist's album by its slug (what plyr.fm's album URLs carry); see appview/query/albums.py."""
    row = await album_q.by_slug(conn, did, slug)
    if row is None:
        raise NotFound(f"album not found: {slug[:100]}")
    return row


def artist_album(row: AlbumRow) -> ArtistAlbum:
    return ArtistAlbum(id=str(row.id), title=row.title, slug=row.slug, track_count=row.track_count,
                       total_plays=row.plays, image_url=row.image_url)


def album_item(row: AlbumRow, owner: ActorBasic) -> AlbumListItem:
    return AlbumListItem(id=str(row.id), title=row.title, slug=row.slug, artist=owner.display_name,
                         artist_handle=owner.handle, track_count=row.track_count)


def playlist(row: ListRow, owner: ActorBasic) -> PlaylistResponse:
    return PlaylistResponse(
        id=str(row.id), name=list_name(row), owner_did=row.did, owner_handle=owner.handle,
        track_count=row.track_count, image_url=row.image_url, show_on_profile=True, atproto_record_uri=row.uri,
        is_private=False, created_at=iso(row.created_at),
        preview_thumbnails=[t for t in (thumbnail(i) or i for i in row.images[:4]) if t],
    )
