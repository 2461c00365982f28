"""plyr.fm REST: artist profiles, analytics and a user's likes."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from appview.deps import Conn, Viewer
from appview.hydration.actors import actors
from appview.query import artists as artist_q
from appview.query import tracks as track_q
from appview.query.actors import resolve
from appview.views import plyr_pages
from appview.views.formats import iso_z
from appview.views.plyr_models import AnalyticsResponse, ArtistResponse, TopItem, UserLikesResponse

router = APIRouter(tags=["artists"])


async def _artist(conn: Conn, ident: str) -> ArtistResponse:
    actor = await resolve(conn, ident)
    basic = (await actors(conn, [actor.did]))[actor.did]
    prof = await artist_q.profile(conn, actor.did)
    return ArtistResponse(
        # plyr.fm's bio is its own profile record's; the Bluesky profile's description stands in when it has none
        did=actor.did, handle=basic.handle, display_name=basic.display_name, bio=prof.bio or basic.description,
        avatar_url=basic.avatar_url, created_at=iso_z(prof.created_at), updated_at=iso_z(prof.updated_at),
        # A user's likes are public records on the network; plyr.fm's switch for showing them is not.
        show_liked_on_profile=True, support_url=None)


@router.get("/artists/by-handle/{handle}")
async def artist_by_handle(conn: Conn, handle: str) -> ArtistResponse:
    return await _artist(conn, handle)


@router.get("/artists/{did}")
async def artist_by_did(conn: Conn, did: str) -> ArtistResponse:
    return await _artist(conn, did)


@router.get("/artists/{did}/analytics")
async def artist_analytics(conn: Conn, did: str) -> AnalyticsResponse:
    """Per-artist totals. Plays are the teal.fm scrobbles we link to the artist's tracks; `top_liked.play_count`
    holds the like count, as on plyr.fm; `rank` is 1..10 among artists by plays, else null."""
    actor = await resolve(conn, did)
    s = await artist_q.stats(conn, actor.did)
    top_liked = TopItem(id=s.top_liked[0], title=s.top_liked[1], play_count=s.top_liked[2]) if s.top_liked else None
    top_item = TopItem(id=s.top_played[0], title=s.top_played[1], play_count=s.top_played[2]) if s.top_played else None
    return AnalyticsResponse(total_plays=s.plays, total_items=s.tracks, total_duration_seconds=s.duration_s,
                             top_item=top_item, top_liked=top_liked, rank=s.rank)


# plyr.fm lists every liked track in one answer and its frontend does not page. The bound only keeps one
# response from growing without limit (~1.5 KB a track): past it, `tracks` is the newest 10,000 likes while
# `count` still says how many there are, and `limit` + `cursor` page through the rest.
LIKES_UNPAGED_MAX = 10_000
LIKES_PAGE_DEFAULT = 100


@router.get("/users/{handle}/likes")
async def user_likes(conn: Conn, viewer: Viewer, response: Response, handle: str, cursor: str | None = None,
                     limit: int | None = Query(None, ge=1, le=500)) -> UserLikesResponse:
    """A user's liked tracks, newest like first: every one of them (up to 10,000), with `count` = how many
    there are. With `limit` or `cursor` it pages instead; the next page's cursor is the `Next-Cursor` header."""
    actor = await resolve(conn, handle)
    paged = limit is not None or cursor is not None
    page, total = await track_q.liked_by(conn, actor.did, (limit or LIKES_PAGE_DEFAULT) if paged
                                         else LIKES_UNPAGED_MAX, cursor)
    if page.cursor is not None:
        response.headers["Next-Cursor"] = page.cursor
    basic = (await actors(conn, [actor.did]))[actor.did]
    return UserLikesResponse(user=plyr_pages.user(basic), tracks=await plyr_pages.tracks(conn, page.ids, viewer),
                             count=total)
