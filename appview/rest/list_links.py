"""plyr.fm REST: what an AT-URI of a list is (for `/at/...` permalinks) and a playlist's metadata alone."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from appview.deps import Conn
from appview.errors import NotFound, ReadError
from appview.hydration.actors import actors
from appview.query import lists as list_q
from appview.query.actors import canonical_uri
from appview.views import plyr_pages
from appview.views.formats import slugify
from appview.views.plyr_models import PlaylistResponse

router = APIRouter(tags=["lists"])
LIST_NSID = "fm.plyr.list"


class ListByUriResponse(BaseModel):
    """plyr.fm's `ListByUriResponse` (backend/api/lists/resolver.py): where the frontend routes a list URI."""

    type: Literal["album", "playlist"]
    id: str
    handle: str | None
    slug: str | None


@router.get("/lists/by-uri")
async def list_by_uri(conn: Conn, uri: str) -> ListByUriResponse:
    """An album answers with its artist's handle and slug (`/u/{handle}/album/{slug}`), anything else is a
    playlist by id (`/playlist/{id}`). A URI that names no list we show is a 404, as on plyr.fm."""
    try:
        row = await list_q.by_uri(conn, await canonical_uri(conn, uri[:8192], LIST_NSID))
    except ReadError:  # not a list URI, or an authority we cannot resolve: plyr.fm knows no such list either
        row = None
    if row is None:
        raise NotFound("list not found")
    if row.list_type == "album":
        owner = (await actors(conn, [row.did]))[row.did]
        return ListByUriResponse(type="album", id=str(row.id), handle=owner.handle,
                                 slug=slugify(plyr_pages.list_name(row)))
    return ListByUriResponse(type="playlist", id=str(row.id), handle=None, slug=None)


@router.get("/lists/playlists/{playlist_id}/meta")
async def playlist_meta(conn: Conn, playlist_id: str) -> PlaylistResponse:
    """A playlist without its tracks (link previews); the same ids and visibility as `/lists/playlists/{id}`."""
    row = await list_q.by_id(conn, int(playlist_id)) if playlist_id.isdigit() and len(playlist_id) <= 18 else None
    if row is None:
        raise NotFound("playlist not found")
    owner = (await actors(conn, [row.did]))[row.did]
    return plyr_pages.playlist(row, owner)
