"""fm.plyr.feed.*: track feeds (latest, top by likes, by artist, by album) and the activity feed."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from appview.deps import Conn, Viewer
from appview.errors import BadParam, NotFound
from appview.hydration.actors import actors
from appview.query import activity as activity_q
from appview.query import albums as album_q
from appview.query import lists as list_q
from appview.query import tracks as track_q
from appview.query.actors import canonical_uri, resolve
from appview.views.formats import iso_z
from appview.views.xrpc_models import ActivityPage, ActivityView, ListPage, TrackList, TrackPage
from appview.views.xrpc_views import album_view, artist_basic, list_view, list_views, track_views
from appview.xrpc.common import offset_cursor, query

router = APIRouter(tags=["xrpc"])
Limit = Annotated[int, Query(ge=1, le=100)]


@query(router, "fm.plyr.feed.getLatest")
async def get_latest(conn: Conn, viewer: Viewer, cursor: str | None = None, limit: Limit = 50) -> TrackPage:
    page = await track_q.latest(conn, viewer, cursor, limit)
    return TrackPage(cursor=page.cursor, tracks=await track_views(conn, page.ids, viewer))


@query(router, "fm.plyr.feed.getTop")
async def get_top(conn: Conn, viewer: Viewer, period: Literal["all_time", "month", "week", "day"] = "all_time",
                  limit: Annotated[int, Query(ge=1, le=50)] = 10) -> TrackList:
    return TrackList(tracks=await track_views(conn, await track_q.top(conn, viewer, period, limit), viewer))


@query(router, "fm.plyr.feed.getArtistTracks")
async def get_artist_tracks(conn: Conn, viewer: Viewer, actor: str, cursor: str | None = None,
                            limit: Limit = 50) -> TrackPage:
    page = await track_q.by_artist(conn, (await resolve(conn, actor)).did, cursor, limit)
    return TrackPage(cursor=page.cursor, tracks=await track_views(conn, page.ids, viewer))


async def list_page(conn: Conn, viewer: str | None, uri: str, cursor: str | None, limit: int) -> ListPage:
    row = await list_q.by_uri(conn, await canonical_uri(conn, uri, "fm.plyr.list"))
    if row is None:
        raise NotFound(f"list not found: {uri}")
    offset = offset_cursor(cursor)
    ids = await list_q.track_ids(conn, row.uri, limit + 1, offset)
    nxt = str(offset + limit) if len(ids) > limit else None
    owner = (await actors(conn, [row.did]))[row.did]
    return ListPage(cursor=nxt, list=list_view(row, owner), tracks=await track_views(conn, ids[:limit], viewer))


@query(router, "fm.plyr.feed.getAlbumTracks")
async def get_album_tracks(conn: Conn, viewer: Viewer, uri: str | None = None, actor: str | None = None,
                           slug: str | None = None, cursor: str | None = None, limit: Limit = 100) -> ListPage:
    """An album's tracks in album order (appview/query/albums.py), named by its list record's `uri` or by
    `actor` + `slug` (an album no list record names has no uri)."""
    if uri is not None:
        album = await album_q.by_list_uri(conn, await canonical_uri(conn, uri, "fm.plyr.list"))
        label = uri
    elif actor is not None:
        did = (await resolve(conn, actor)).did  # an unknown or hidden actor is ActorNotFound, as everywhere
        if slug is None:
            raise BadParam("slug: required with actor")
        album = await album_q.by_slug(conn, did, slug)
        label = f"{actor[:100]}/{slug[:100]}"
    else:
        raise BadParam("give uri, or actor and slug")
    if album is None:
        raise NotFound(f"album not found: {label}")
    offset = offset_cursor(cursor)
    ids = await album_q.track_ids(conn, album.did, album.slug, limit + 1, offset)
    owner = (await actors(conn, [album.did]))[album.did]
    return ListPage(cursor=str(offset + limit) if len(ids) > limit else None, list=album_view(album, owner),
                    tracks=await track_views(conn, ids[:limit], viewer))


@query(router, "fm.plyr.feed.getActivity")
async def get_activity(conn: Conn, viewer: Viewer, cursor: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=100)] = 20) -> ActivityPage:
    events, nxt = await activity_q.feed(conn, viewer, cursor, limit)
    tracks = {t.id: t for t in await track_views(conn, [e.track_id for e in events if e.track_id], viewer)}
    rows = await list_q.by_ids(conn, [e.list_id for e in events if e.list_id])
    lists = {v.id: v for v in await list_views(conn, list(rows.values()))}
    people = await actors(conn, [e.did for e in events])
    shown = [e for e in events
             if (e.track_id is None or e.track_id in tracks) and (e.list_id is None or e.list_id in lists)]
    out = [ActivityView(type=e.kind, uri=e.uri, actor=artist_basic(people[e.did]),
                        track=tracks.get(e.track_id) if e.track_id else None,
                        list=lists.get(e.list_id) if e.list_id else None, text=e.text, created_at=iso_z(e.sort_at))
           for e in shown]
    return ActivityPage(cursor=nxt, events=out)
