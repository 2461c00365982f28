"""plyr.fm REST: platform stats, the activity feed and its histogram, oEmbed."""

from __future__ import annotations

import html
import re

from fastapi import APIRouter, Query

from appview.deps import Conn, ReadConn, Viewer
from appview.errors import BadParam, NotFound
from appview.hydration.actors import actors
from appview.hydration.tracks import hydrate
from appview.query import activity as activity_q
from appview.query import artists as artist_q
from appview.query import lists as list_q
from appview.query import tracks as track_q
from appview.query.actors import resolve
from appview.views import plyr_pages
from appview.views.formats import iso_z, slugify, thumbnail
from appview.views.plyr_models import (
    ActivityCollection,
    ActivityEvent,
    ActivityResponse,
    ActivityTrack,
    HistogramBucket,
    HistogramResponse,
    OEmbedResponse,
    PlatformStats,
)

router = APIRouter(tags=["stats"])
SITE = "https://plyr.fm"


@router.get("/stats")
async def platform_stats(conn: ReadConn) -> PlatformStats:
    c = await artist_q.platform(conn)
    return PlatformStats(total_plays=c.plays, total_tracks=c.tracks, total_artists=c.artists,
                         total_duration_seconds=c.duration_s)


@router.get("/activity/")
async def activity(conn: Conn, viewer: Viewer, cursor: str | None = None,
                   limit: int = Query(20, ge=1, le=100)) -> ActivityResponse:
    events, nxt = await activity_q.feed(conn, viewer, cursor, limit)
    tracks = {t.id: t for t in await hydrate(conn, [e.track_id for e in events if e.track_id is not None], viewer)}
    people = await actors(conn, [e.did for e in events])
    lists = await list_q.by_ids(conn, [e.list_id for e in events if e.list_id is not None])
    out = []
    for e in events:
        t = tracks.get(e.track_id) if e.track_id is not None else None
        row = lists.get(e.list_id) if e.list_id is not None else None
        if (e.track_id is not None and t is None) or (e.list_id is not None and row is None):
            continue
        track = (ActivityTrack(id=t.id, title=t.title, artist_handle=t.handle, image_url=t.image_url,
                               thumbnail_url=thumbnail(t.image_url), artist_avatar_url=t.avatar_url) if t else None)
        coll = None
        if row is not None:
            name = plyr_pages.list_name(row)
            coll = ActivityCollection(type="album" if row.list_type == "album" else "playlist", id=str(row.id),
                                      name=name, image_url=row.image_url, owner_handle=people[e.did].handle,
                                      slug=slugify(name) if row.list_type == "album" else None)
        kind = "track" if e.kind == "track" else e.kind
        out.append(ActivityEvent(type=kind, actor=plyr_pages.user(people[e.did]), track=track,
                                 comment_text=e.text, collection=coll, created_at=iso_z(e.sort_at)))
    return ActivityResponse(events=out, next_cursor=nxt, has_more=nxt is not None)


@router.get("/activity/histogram")
async def activity_histogram(conn: Conn, days: int = Query(7, ge=1, le=30)) -> HistogramResponse:
    return HistogramResponse(buckets=[HistogramBucket(date=d.isoformat(), count=n)
                                      for d, n in await activity_q.histogram(conn, days)])


_TRACK = re.compile(r"/track/(\d{1,18})/?")
_PLAYLIST = re.compile(r"/playlist/(\d{1,18})/?")
_ALBUM = re.compile(r"/u/([^/]+)/album/([^/]+)/?")


@router.get("/oembed")
async def oembed(conn: Conn, url: str, maxwidth: int | None = Query(None, ge=1),
                 maxheight: int | None = Query(None, ge=1), format: str = "json") -> OEmbedResponse:
    """oEmbed for track, playlist and album page URLs of plyr.fm (the pages our ids route to)."""
    if format != "json":
        raise BadParam("only format=json is supported")
    path = re.sub(r"^https?://[^/]+", "", url.split("?")[0])
    width = min(maxwidth or 400, 800)
    if m := _TRACK.fullmatch(path):
        items = await plyr_pages.tracks(conn, [int(m.group(1))], None) if await track_q.visible_id(
            conn, int(m.group(1))) else []
        if not items:
            raise NotFound("track not found")
        t = items[0]
        return _embed(f"{t.title} - {t.artist}", t.artist, t.artist_handle, f"track/{t.id}", width,
                      min(maxheight or 165, 165), t.image_url)
    if m := _PLAYLIST.fullmatch(path):
        row = await list_q.by_id(conn, int(m.group(1)))
        if row is None:
            raise NotFound("playlist not found")
        owner = (await actors(conn, [row.did]))[row.did]
        return _embed(plyr_pages.list_name(row), owner.display_name, owner.handle, f"playlist/{row.id}", width,
                      min(maxheight or 380, 600), row.image_url)
    if m := _ALBUM.fullmatch(path):
        actor = await resolve(conn, m.group(1))
        album = await plyr_pages.album_by_slug(conn, actor.did, m.group(2))
        owner = (await actors(conn, [actor.did]))[actor.did]
        return _embed(album.title, owner.display_name, owner.handle,
                      f"album/{owner.handle}/{album.slug}", width, min(maxheight or 380, 600), album.image_url)
    raise NotFound("not an embeddable plyr.fm URL (track, playlist or album page)")


def _embed(title: str, author: str, handle: str, path: str, width: int, height: int, image: str | None,
           ) -> OEmbedResponse:
    src = html.escape(f"{SITE}/embed/{path}", quote=True)
    frame = (f'<iframe src="{src}" width="{width}" height="{height}" frameborder="0" allow="autoplay" '
             f'style="border-radius: 8px;"></iframe>')
    return OEmbedResponse(version="1.0", type="rich", provider_name="plyr.fm", provider_url=SITE, title=title,
                          author_name=author, author_url=f"{SITE}/u/{handle}", width=width, height=height,
                          html=frame, thumbnail_url=image, thumbnail_width=300 if image else None,
                          thumbnail_height=300 if image else None)
