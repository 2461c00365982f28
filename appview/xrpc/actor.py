"""fm.plyr.actor.* and fm.plyr.stats.*: profiles with counts, an artist's lists and likes, statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from appview.deps import Conn, Viewer
from appview.hydration.actors import actors
from appview.query import albums as album_q
from appview.query import artists as artist_q
from appview.query import lists as list_q
from appview.query import tracks as track_q
from appview.query.actors import resolve
from appview.views.formats import iso_z
from appview.views.xrpc_models import ArtistStatsView, ArtistView, Lists, PlatformStatsView, TrackPage
from appview.views.xrpc_views import album_views, artist_basic, list_views, track_views
from appview.xrpc.common import query

router = APIRouter(tags=["xrpc"])


@query(router, "fm.plyr.actor.getProfile")
async def get_profile(conn: Conn, actor: str) -> ArtistView:
    a = await resolve(conn, actor)
    basic = (await actors(conn, [a.did]))[a.did]
    prof, stats = await artist_q.profile(conn, a.did), await artist_q.stats(conn, a.did)
    albums, playlists = await album_q.of_actor(conn, a.did), await list_q.of_actor(conn, a.did, "playlist")
    return ArtistView(did=a.did, handle=basic.handle, display_name=basic.display_name, avatar=basic.avatar_url,
                      bio=prof.bio, description=basic.description, track_count=stats.tracks,
                      album_count=len(albums), playlist_count=len(playlists),
                      like_count=stats.likes, comment_count=stats.comments,
                      created_at=iso_z(prof.created_at) if prof.created_at else None)


@query(router, "fm.plyr.actor.getAlbums")
async def get_albums(conn: Conn, actor: str) -> Lists:
    """The artist's albums as plyr.fm makes them (appview/query/albums.py), by title."""
    return Lists(lists=await album_views(conn, await album_q.of_actor(conn, (await resolve(conn, actor)).did)))


@query(router, "fm.plyr.actor.getPlaylists")
async def get_playlists(conn: Conn, actor: str) -> Lists:
    rows = await list_q.of_actor(conn, (await resolve(conn, actor)).did, "playlist")
    return Lists(lists=await list_views(conn, rows))


@query(router, "fm.plyr.actor.getLikes")
async def get_likes(conn: Conn, viewer: Viewer, actor: str, cursor: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=100)] = 50) -> TrackPage:
    """The actor's liked tracks, newest like first."""
    page, _ = await track_q.liked_by(conn, (await resolve(conn, actor)).did, limit, cursor)
    return TrackPage(cursor=page.cursor, tracks=await track_views(conn, page.ids, viewer))


@query(router, "fm.plyr.stats.getPlatformStats")
async def get_platform_stats(conn: Conn) -> PlatformStatsView:
    c = await artist_q.platform(conn)
    return PlatformStatsView(tracks=c.tracks, artists=c.artists, duration_seconds=c.duration_s, plays=c.plays)


@query(router, "fm.plyr.stats.getArtistStats")
async def get_artist_stats(conn: Conn, viewer: Viewer, actor: str) -> ArtistStatsView:
    a = await resolve(conn, actor)
    s = await artist_q.stats(conn, a.did)
    top = await track_views(conn, [s.top_liked[0]], viewer) if s.top_liked else []
    return ArtistStatsView(actor=artist_basic((await actors(conn, [a.did]))[a.did]), tracks=s.tracks,
                           duration_seconds=s.duration_s, likes=s.likes, comments=s.comments, plays=s.plays,
                           top_liked=top[0] if top else None)
