"""Hydrated rows → our XRPC view objects."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from appview.hydration.actors import ActorBasic, actors
from appview.hydration.tracks import TrackData, hydrate
from appview.query import lists as list_q
from appview.query import tracks as track_q
from appview.query.albums import AlbumRow
from appview.query.lists import ListRow
from appview.views.formats import iso_z
from appview.views.plyr_tracks import file_id
from appview.views.xrpc_models import AlbumRef, ArtistViewBasic, AudioView, ListView, TrackView, TrackViewerState


def artist_basic(a: ActorBasic) -> ArtistViewBasic:
    return ArtistViewBasic(did=a.did, handle=a.handle, display_name=a.display_name, avatar=a.avatar_url)


def track_view(t: TrackData, viewer: str | None) -> TrackView:
    return TrackView(
        uri=t.uri, cid=t.cid, id=t.id, title=t.title,
        artist=ArtistViewBasic(did=t.did, handle=t.handle, display_name=t.artist_display_name, avatar=t.avatar_url),
        artist_name=t.artist,
        album=AlbumRef(uri=t.album.uri, id=t.album.id, name=t.album.name, slug=t.album.slug or None)
        if t.album else None,
        duration=t.duration,
        audio=AudioView(file_id=file_id(t), file_type=t.file_type, blob_cid=t.audio_blob_cid,
                        mime_type=t.audio_blob_mime, size=t.audio_blob_size, url=t.audio_url,
                        playability=t.playability),
        image_url=t.image_url, description=t.description, features=[artist_basic(f) for f in t.features],
        support_gate=t.support_gate, labels=list(t.labels), like_count=t.like_count, comment_count=t.comment_count,
        play_count=t.play_count, created_at=iso_z(t.created_at), indexed_at=iso_z(t.indexed_at),
        viewer=TrackViewerState(liked=t.is_liked) if viewer else None,
    )


async def track_views(conn: AsyncConnection, ids: list[int], viewer: str | None) -> list[TrackView]:
    return [track_view(t, viewer) for t in await hydrate(conn, ids, viewer)]


def list_view(row: ListRow, owner: ActorBasic) -> ListView:
    name = row.name or ("Liked Tracks" if row.list_type == "liked" else "untitled")
    return ListView(uri=row.uri, cid=row.cid, id=row.id, name=name, list_type=row.list_type or "playlist",
                    author=artist_basic(owner), track_count=row.track_count, image_url=row.image_url,
                    created_at=iso_z(row.created_at))


def album_view(row: AlbumRow, owner: ActorBasic) -> ListView:
    """An album (appview/query/albums.py) as a list view; uri/cid absent when no list record names it."""
    return ListView(uri=row.uri, cid=row.cid, id=row.id, name=row.title, list_type="album", author=artist_basic(owner),
                    track_count=row.track_count, image_url=row.image_url, created_at=iso_z(row.created_at),
                    slug=row.slug)


async def album_views(conn: AsyncConnection, rows: list[AlbumRow]) -> list[ListView]:
    owners = await actors(conn, [r.did for r in rows])
    return [album_view(r, owners[r.did]) for r in rows]


async def list_views(conn: AsyncConnection, rows: list[ListRow]) -> list[ListView]:
    owners = await actors(conn, [r.did for r in rows])
    return [list_view(r, owners[r.did]) for r in rows]


async def record_views(conn: AsyncConnection, uris: list[str]) -> dict[str, dict[str, Any]]:
    """The current view of each track or list among `uris` (the outbound stream's hydrate mode);
    records of other kinds, and hidden or unknown ones, are left out."""
    tracks = [u for u in uris if "/fm.plyr.track/" in u]
    lists = [u for u in uris if "/fm.plyr.list/" in u]
    out: dict[str, dict[str, Any]] = {}
    if tracks:
        ids = await track_q.ids_by_uris(conn, tracks)
        for v in await track_views(conn, list(ids.values()), None):
            out[v.uri] = v.model_dump(by_alias=True, exclude_none=True)
    for lv in await list_views(conn, list((await list_q.by_uris(conn, lists)).values())):
        if lv.uri is not None:  # always, for a list record
            out[lv.uri] = lv.model_dump(by_alias=True, exclude_none=True)
    return out
