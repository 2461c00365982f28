"""fm.plyr.track.* and fm.plyr.list.*: one track, several tracks, a track's comments, one list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from appview.deps import Conn, ReadConn, Viewer
from appview.errors import BadParam, NotFound
from appview.hydration.actors import actors
from appview.hydration.tracks import one as hydrate_one
from appview.query import comments as comment_q
from appview.query import tracks as track_q
from appview.query.actors import canonical_uri
from appview.views.formats import iso_z
from appview.views.xrpc_models import CommentPage, CommentView, ListPage, TrackList, TrackOne
from appview.views.xrpc_views import artist_basic, track_view, track_views
from appview.xrpc.common import query
from appview.xrpc.feed import list_page

router = APIRouter(tags=["xrpc"])
TRACK = "fm.plyr.track"


@query(router, "fm.plyr.track.getTrack")
async def get_track(conn: ReadConn, viewer: Viewer, uri: str) -> TrackOne:
    canonical = await canonical_uri(conn, uri, TRACK)
    found = await hydrate_one(conn, track_q.uri_where(), {"uri": canonical}, viewer)
    if found is None:
        raise NotFound(f"track not found: {uri}")
    return TrackOne(track=track_view(found, viewer))


@query(router, "fm.plyr.track.getTracks")
async def get_tracks(conn: Conn, viewer: Viewer, uris: Annotated[list[str], Query(max_length=25)]) -> TrackList:
    """Tracks for up to 25 URIs, in the order asked; unknown or hidden ones are left out."""
    canonical = [await canonical_uri(conn, u, TRACK) for u in uris]
    found = await track_q.ids_by_uris(conn, canonical)
    return TrackList(tracks=await track_views(conn, [found[u] for u in canonical if u in found], viewer))


def _comment_cursor(raw: str | None) -> tuple[int, int] | None:
    if not raw:
        return None
    ts, _, cid = raw.partition(":")
    if not (ts.isdigit() and cid.isdigit() and len(ts) < 19 and len(cid) < 19):
        raise BadParam(f"malformed cursor {raw[:40]!r}")
    return int(ts), int(cid)


@query(router, "fm.plyr.track.getComments")
async def get_comments(conn: Conn, uri: str, cursor: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=100)] = 50) -> CommentPage:
    """Timed comments by playback position (timestampMs)."""
    after = _comment_cursor(cursor)
    canonical = await canonical_uri(conn, uri, TRACK)
    if not await track_q.ids_by_uris(conn, [canonical]):
        raise NotFound(f"track not found: {uri}")
    rows = await comment_q.for_track(conn, canonical, limit + 1, after)
    nxt = f"{rows[limit - 1].timestamp_ms}:{rows[limit - 1].id}" if len(rows) > limit else None
    rows = rows[:limit]
    people = await actors(conn, [r.did for r in rows])
    return CommentPage(cursor=nxt, comments=[
        CommentView(uri=r.uri, cid=r.cid, id=r.id, author=artist_basic(people[r.did]), text=r.text,
                    timestamp_ms=r.timestamp_ms, created_at=iso_z(r.created_at),
                    updated_at=iso_z(r.updated_at) if r.updated_at else None, indexed_at=iso_z(r.indexed_at))
        for r in rows])


@query(router, "fm.plyr.list.getList")
async def get_list(conn: Conn, viewer: Viewer, uri: str, cursor: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=100)] = 100) -> ListPage:
    """One list (album, playlist or liked) with its tracks in the record's order."""
    return await list_page(conn, viewer, uri, cursor, limit)
