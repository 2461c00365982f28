"""plyr.fm REST: albums and playlists (fm.plyr.list records, in the order their records give)."""

from __future__ import annotations

from fastapi import APIRouter

from appview.auth import RequiredViewer
from appview.deps import Conn, Viewer
from appview.errors import NotFound
from appview.hydration.actors import actors
from appview.query import albums as album_q
from appview.query import lists as list_q
from appview.query.actors import canonical_uri, resolve
from appview.query.lists import ListRow
from appview.views import plyr_pages
from appview.views.plyr_models import (
    AlbumMetadata,
    AlbumResponse,
    AlbumsResponse,
    ArtistAlbumsResponse,
    PlaylistResponse,
    PlaylistWithTracksResponse,
)

router = APIRouter(tags=["lists"])
LIST_NSID = "fm.plyr.list"


@router.get("/albums/")
async def all_albums(conn: Conn) -> AlbumsResponse:
    """Every album with a visible track, by title: albums as plyr.fm makes them (appview/query/albums.py)."""
    rows = await album_q.all_albums(conn)
    owners = await actors(conn, [r.did for r in rows])
    return AlbumsResponse(albums=[plyr_pages.album_item(r, owners[r.did]) for r in rows])


@router.get("/albums/{handle}")
async def artist_albums(conn: Conn, handle: str) -> ArtistAlbumsResponse:
    actor = await resolve(conn, handle)
    return ArtistAlbumsResponse(albums=[plyr_pages.artist_album(r) for r in await album_q.of_actor(conn, actor.did)])


@router.get("/albums/{handle}/{slug}")
async def album_detail(conn: Conn, viewer: Viewer, handle: str, slug: str) -> AlbumResponse:
    """One album, its tracks in album order: the list record's order, then the rest by createdAt."""
    actor = await resolve(conn, handle)
    row = await plyr_pages.album_by_slug(conn, actor.did, slug)
    owner = (await actors(conn, [actor.did]))[actor.did]
    ids = await album_q.track_ids(conn, row.did, row.slug)
    tracks = await plyr_pages.tracks(conn, ids, viewer, with_record_url=True)
    meta = AlbumMetadata(id=str(row.id), title=row.title, slug=row.slug, description=None,
                         artist=owner.display_name, artist_handle=owner.handle, artist_did=row.did,
                         track_count=len(tracks), total_plays=sum(t.play_count for t in tracks),
                         image_url=row.image_url, list_uri=row.uri)
    return AlbumResponse(metadata=meta, tracks=tracks)


async def _with_tracks(conn: Conn, row: ListRow | None, viewer: str | None, label: str) -> PlaylistWithTracksResponse:
    if row is None:
        raise NotFound(f"playlist not found: {label}")
    owner = (await actors(conn, [row.did]))[row.did]
    tracks = await plyr_pages.tracks(conn, await list_q.track_ids(conn, row.uri), viewer)
    base = plyr_pages.playlist(row, owner).model_dump()
    base["track_count"] = len(tracks)
    return PlaylistWithTracksResponse(**base, tracks=tracks)


@router.get("/lists/playlists/by-uri")
async def playlist_by_uri(conn: Conn, viewer: Viewer, uri: str) -> PlaylistWithTracksResponse:
    return await _with_tracks(conn, await list_q.by_uri(conn, await canonical_uri(conn, uri, LIST_NSID)), viewer, uri)


@router.get("/lists/playlists/by-artist/{artist_did}")
async def playlists_by_artist(conn: Conn, artist_did: str) -> list[PlaylistResponse]:
    actor = await resolve(conn, artist_did)
    owner = (await actors(conn, [actor.did]))[actor.did]
    return [plyr_pages.playlist(r, owner) for r in await list_q.of_actor(conn, actor.did, "playlist")]


@router.get("/lists/playlists")
async def my_playlists(conn: Conn, viewer: RequiredViewer) -> list[PlaylistResponse]:
    """The signed-in viewer's own playlists (service-auth JWT required)."""
    owner = (await actors(conn, [viewer.did]))[viewer.did]
    return [plyr_pages.playlist(r, owner) for r in await list_q.of_actor(conn, viewer.did, "playlist")]


@router.get("/lists/playlists/{playlist_id}")
async def playlist(conn: Conn, viewer: Viewer, playlist_id: str) -> PlaylistWithTracksResponse:
    """A list by its id (any listType; plyr.fm's ids are UUIDs, ours are the numbers our views expose)."""
    if not playlist_id.isdigit() or len(playlist_id) > 18:
        raise NotFound(f"playlist not found: {playlist_id[:40]}")
    return await _with_tracks(conn, await list_q.by_id(conn, int(playlist_id)), viewer, playlist_id)
