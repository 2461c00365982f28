"""Response models of both search surfaces, and the one place that turns hits into them.

REST (`GET /search/`) mirrors plyr.fm's `SearchResponse` field for field (plyr-api-samples.md §9).
XRPC (`fm.plyr.search.*`) follows app.bsky conventions: camelCase, optional fields omitted, no
floats (the atproto data model has none, so relevance stays off the wire and only orders results).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from appview.search.query import ArtistHit, ListHit, TrackHit
from appview.search.text import slugify
from appview.views.urls import SafeUrl

INVALID_HANDLE = "handle.invalid"

# ---- REST (plyr.fm) -------------------------------------------------------------------------


class TrackSearchResult(BaseModel):
    type: Literal["track"] = "track"
    id: int
    title: str
    artist_handle: str
    artist_display_name: str
    image_url: SafeUrl
    relevance: float


class ArtistSearchResult(BaseModel):
    type: Literal["artist"] = "artist"
    did: str
    handle: str
    display_name: str
    avatar_url: SafeUrl
    relevance: float


class AlbumSearchResult(BaseModel):
    type: Literal["album"] = "album"
    id: str
    title: str
    slug: str
    artist_handle: str
    artist_display_name: str
    image_url: SafeUrl
    relevance: float


class TagSearchResult(BaseModel):
    """Never produced: tags live in plyr.fm's database, not on the network (kept for the shape)."""

    type: Literal["tag"] = "tag"
    id: int
    name: str
    track_count: int
    relevance: float


class PlaylistSearchResult(BaseModel):
    type: Literal["playlist"] = "playlist"
    id: str
    name: str
    owner_handle: str
    owner_display_name: str
    image_url: SafeUrl
    track_count: int
    relevance: float


SearchResult = TrackSearchResult | ArtistSearchResult | AlbumSearchResult | TagSearchResult | PlaylistSearchResult


class SearchCounts(BaseModel):
    tracks: int = 0
    artists: int = 0
    albums: int = 0
    tags: int = 0
    playlists: int = 0


class SearchResponse(BaseModel):
    results: list[SearchResult]
    counts: SearchCounts


def _names(handle: str | None, display: str | None) -> tuple[str, str]:
    h = handle or INVALID_HANDLE
    return h, display or h


def rest_track(h: TrackHit) -> TrackSearchResult:
    handle, name = _names(h.handle, h.display_name)
    return TrackSearchResult(id=h.id, title=h.title, artist_handle=handle, artist_display_name=name,
                             image_url=h.image_url, relevance=round(h.relevance, 3))


def rest_artist(h: ArtistHit) -> ArtistSearchResult:
    return ArtistSearchResult(did=h.did, handle=h.handle, display_name=h.display_name or h.handle,
                              avatar_url=h.avatar, relevance=round(h.relevance, 3))


def rest_album(h: ListHit) -> AlbumSearchResult:
    handle, name = _names(h.handle, h.display_name)
    return AlbumSearchResult(id=str(h.id), title=h.name, slug=slugify(h.name), artist_handle=handle,
                             artist_display_name=name, image_url=None, relevance=round(h.relevance, 3))


def rest_playlist(h: ListHit) -> PlaylistSearchResult:
    handle, name = _names(h.handle, h.display_name)
    return PlaylistSearchResult(id=str(h.id), name=h.name, owner_handle=handle, owner_display_name=name,
                                image_url=None, track_count=h.item_count, relevance=round(h.relevance, 3))


# ---- XRPC (fm.plyr.search.*; shapes of fm.plyr.search.defs) --------------------------------


class ActorView(BaseModel):
    did: str
    handle: str
    displayName: str  # noqa: N815 - lexicon field name
    avatar: SafeUrl = None


class TrackResult(BaseModel):
    uri: str
    cid: str
    id: int
    title: str
    artist: ActorView
    artistName: str  # noqa: N815
    album: str | None = None
    imageUrl: SafeUrl = None  # noqa: N815
    createdAt: str  # noqa: N815
    indexedAt: str  # noqa: N815


class ListResult(BaseModel):
    uri: str
    cid: str
    id: int
    name: str
    listType: str  # noqa: N815
    author: ActorView
    trackCount: int  # noqa: N815
    createdAt: str  # noqa: N815


class SearchTracksOutput(BaseModel):
    cursor: str | None = None
    tracks: list[TrackResult]


class SearchArtistsOutput(BaseModel):
    cursor: str | None = None
    artists: list[ActorView]


class SearchListsOutput(BaseModel):
    cursor: str | None = None
    lists: list[ListResult]


def _z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _actor(did: str, handle: str | None, display: str | None, avatar: str | None) -> ActorView:
    h, name = _names(handle, display)
    return ActorView(did=did, handle=h, displayName=name, avatar=avatar)


def xrpc_track(h: TrackHit) -> TrackResult:
    return TrackResult(uri=h.uri, cid=h.cid, id=h.id, title=h.title,
                       artist=_actor(h.did, h.handle, h.display_name, h.avatar), artistName=h.artist,
                       album=h.album, imageUrl=h.image_url, createdAt=h.created_at, indexedAt=_z(h.indexed_at))


def xrpc_artist(h: ArtistHit) -> ActorView:
    return _actor(h.did, h.handle, h.display_name, h.avatar)


def xrpc_list(h: ListHit) -> ListResult:
    return ListResult(uri=h.uri, cid=h.cid, id=h.id, name=h.name, listType=h.list_type,
                      author=_actor(h.did, h.handle, h.display_name, h.avatar), trackCount=h.item_count,
                      createdAt=h.created_at)
