"""plyr.fm REST: /tracks/ feeds, detail, comments and likers."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from appview.deps import Conn, ReadConn, Viewer
from appview.errors import NotFound
from appview.hydration.actors import actors
from appview.query import comments as comment_q
from appview.query import tracks as track_q
from appview.query.actors import canonical_uri, resolve
from appview.views import plyr_pages
from appview.views.formats import iso
from appview.views.plyr_models import (
    CommentResponse,
    CommentsListResponse,
    Liker,
    TrackLikersResponse,
    TrackResponse,
    TracksListResponse,
)

router = APIRouter(tags=["tracks"])


@router.get("/tracks/", response_model=TracksListResponse)
async def list_tracks(conn: ReadConn, viewer: Viewer, cursor: str | None = None, artist_did: str | None = None,
                      limit: int = Query(50, ge=1, le=100)) -> Response:
    """The discovery feed (newest first), or one artist's tracks with `artist_did`."""
    if artist_did:
        where, params = track_q.artist_where(), {"did": (await resolve(conn, artist_did)).did}
    else:
        where, params = track_q.latest_where(), {}
    body = await plyr_pages.feed_page_json(conn, where, params, cursor, limit, viewer)
    return Response(body, media_type="application/json")


@router.get("/tracks/top")
async def top_tracks(conn: Conn, viewer: Viewer, period: Literal["all_time", "month", "week", "day"] = "all_time",
                     limit: int = Query(10, ge=1, le=50)) -> list[TrackResponse]:
    """Most liked tracks within `period` (distinct likers; at least one like)."""
    return await plyr_pages.tracks(conn, await track_q.top(conn, viewer, period, limit), viewer)


@router.get("/tracks/by-uri", response_model=TrackResponse)
async def track_by_uri(conn: ReadConn, viewer: Viewer, uri: str) -> Response:
    canonical = await canonical_uri(conn, uri, "fm.plyr.track")
    return await _one(conn, track_q.uri_where(), {"uri": canonical}, viewer, uri)


async def _one(conn: ReadConn, where: str, params: dict[str, object], viewer: str | None, label: object) -> Response:
    body = await plyr_pages.track_json(conn, where, params, viewer)
    if body is None:
        raise NotFound(f"track not found: {label}")
    return Response(body, media_type="application/json")


async def _track_uri(conn: Conn, track_id: int) -> str:
    uri = await track_q.visible_uri(conn, track_id)
    if uri is None:
        raise NotFound(f"track not found: {track_id}")
    return uri


@router.get("/tracks/{track_id}", response_model=TrackResponse)
async def get_track(conn: ReadConn, viewer: Viewer, track_id: int) -> Response:
    return await _one(conn, track_q.id_where(), {"id": track_id}, viewer, track_id)


@router.get("/tracks/{track_id}/comments")
async def track_comments(conn: Conn, track_id: int) -> CommentsListResponse:
    """Timed comments ordered by playback position. plyr.fm hides comments unless the artist enabled
    them in its own settings; that switch is not on the network, so comments that exist are shown."""
    rows = await comment_q.for_track(conn, await _track_uri(conn, track_id), limit=None)
    people = await actors(conn, [r.did for r in rows])
    out = [CommentResponse(id=r.id, user_did=r.did, user_handle=people[r.did].handle if people[r.did].known else r.did,
                           user_display_name=people[r.did].display_name, user_avatar_url=people[r.did].avatar_url,
                           text=r.text, timestamp_ms=r.timestamp_ms, created_at=iso(r.created_at),
                           updated_at=iso(r.updated_at) if r.updated_at else None) for r in rows]
    # Every comment, never capped, and `count` is how many are listed (as plyr.fm does).
    return CommentsListResponse(comments=out, count=len(out), comments_enabled=True)


@router.get("/tracks/{track_id}/likes")
async def track_likers(conn: Conn, track_id: int) -> TrackLikersResponse:
    """Every distinct liker (never capped); `count` is how many are listed."""
    rows = await comment_q.likers(conn, await _track_uri(conn, track_id), limit=None)
    people = await actors(conn, [d for d, _ in rows])
    users = [Liker(did=d, handle=people[d].handle, display_name=people[d].display_name,
                   avatar_url=people[d].avatar_url, liked_at=iso(at)) for d, at in rows]
    return TrackLikersResponse(users=users, count=len(users))
