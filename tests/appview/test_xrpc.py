"""Our XRPC queries over the known world; every response is checked against its query lexicon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from core.lexicon import LexiconSet
from tests.appview.world import ART, FAN, World, client

LEXICONS = LexiconSet.load(Path(__file__).resolve().parents[2] / "lexicons")


async def xrpc(c: httpx.AsyncClient, nsid: str, **params: Any) -> dict[str, Any]:
    r = await c.get(f"/xrpc/{nsid}", params=params)
    assert r.status_code == 200, (nsid, r.text)
    body = r.json()
    assert LEXICONS.validate_output(nsid, body) is None, (nsid, LEXICONS.validate_output(nsid, body))
    return body


async def test_feeds_and_tracks(world: World) -> None:
    async with client(world.db_url) as c:
        latest = await xrpc(c, "fm.plyr.feed.getLatest", limit=1)
        assert [t["title"] for t in latest["tracks"]] == ["second wind"] and latest["cursor"]
        rest = await xrpc(c, "fm.plyr.feed.getLatest", cursor=latest["cursor"])
        assert [t["title"] for t in rest["tracks"]] == ["first light"] and "cursor" not in rest
        t1 = rest["tracks"][0]
        assert t1["likeCount"] == 2 and t1["commentCount"] == 2 and t1["artist"]["handle"] == "artist.test"
        assert t1["album"]["name"] == "Night Tapes" and "viewer" not in t1
        top = await xrpc(c, "fm.plyr.feed.getTop", period="week")
        assert isinstance(top["tracks"], list)
        mine = await xrpc(c, "fm.plyr.feed.getArtistTracks", actor="artist.test")
        assert len(mine["tracks"]) == 3
        one = await xrpc(c, "fm.plyr.track.getTrack", uri=world.t1)
        assert one["track"]["uri"] == world.t1
        many = await xrpc(c, "fm.plyr.track.getTracks", uris=[world.t2, "at://did:plc:nobody/fm.plyr.track/3kzz",
                                                                world.t1])
        assert [t["uri"] for t in many["tracks"]] == [world.t2, world.t1]
        comments = await xrpc(c, "fm.plyr.track.getComments", uri=world.t1, limit=1)
        assert comments["comments"][0]["text"] == "early" and comments["cursor"]
        more = await xrpc(c, "fm.plyr.track.getComments", uri=world.t1, cursor=comments["cursor"])
        assert [x["text"] for x in more["comments"]] == ["late"]


async def test_lists_actors_stats_activity(world: World) -> None:
    async with client(world.db_url) as c:
        album = await xrpc(c, "fm.plyr.feed.getAlbumTracks", uri=world.album)
        assert album["list"]["listType"] == "album" and [t["uri"] for t in album["tracks"]] == [world.t2, world.t1]
        page = await xrpc(c, "fm.plyr.list.getList", uri=world.playlist, limit=1)
        assert len(page["tracks"]) == 1 and page["cursor"] == "1"
        prof = await xrpc(c, "fm.plyr.actor.getProfile", actor=ART)
        assert (prof["trackCount"], prof["albumCount"], prof["likeCount"], prof["commentCount"]) == (3, 1, 3, 2)
        assert len((await xrpc(c, "fm.plyr.actor.getAlbums", actor="artist.test"))["lists"]) == 1
        assert len((await xrpc(c, "fm.plyr.actor.getPlaylists", actor=FAN))["lists"]) == 1
        likes = await xrpc(c, "fm.plyr.actor.getLikes", actor=FAN)
        assert [t["uri"] for t in likes["tracks"]] == [world.t2, world.t1]
        stats = await xrpc(c, "fm.plyr.stats.getPlatformStats")
        assert stats == {"tracks": 3, "artists": 1, "durationSeconds": 180, "plays": 0}
        a = await xrpc(c, "fm.plyr.stats.getArtistStats", actor=ART)
        assert a["topLiked"]["uri"] == world.t1
        act = await xrpc(c, "fm.plyr.feed.getActivity", limit=100)
        assert {e["type"] for e in act["events"]} >= {"like", "track", "comment", "album_release", "playlist_create"}


@pytest.mark.parametrize("path,status,error", [
    ("/xrpc/fm.plyr.feed.getLatest?limit=0", 400, "InvalidRequest"),
    ("/xrpc/fm.plyr.feed.getLatest?cursor=garbage", 400, "InvalidRequest"),
    ("/xrpc/fm.plyr.track.getTrack", 400, "InvalidRequest"),
    ("/xrpc/fm.plyr.track.getTrack?uri=not-a-uri", 400, "InvalidRequest"),
    ("/xrpc/fm.plyr.track.getTrack?uri=at://did:plc:nobody/fm.plyr.track/3kzz", 404, "NotFound"),
    ("/xrpc/fm.plyr.actor.getProfile?actor=nobody.test", 404, "ActorNotFound"),
    ("/xrpc/fm.plyr.track.getComments?uri=at://did:plc:x/fm.plyr.track/3kzz&cursor=1:x", 400, "InvalidRequest"),
])
async def test_xrpc_errors(world: World, path: str, status: int, error: str) -> None:
    async with client(world.db_url) as c:
        r = await c.get(path)
        assert r.status_code == status, r.text
        assert r.json()["error"] == error and r.json()["message"]


async def test_record_views_hydrate_the_outbound_stream(world: World) -> None:
    from appview.views.xrpc_views import record_views
    from core.db.connect import connect

    async with await connect(world.db_url) as conn:
        views = await record_views(conn, [world.t1, world.playlist, world.t3 + "x", "at://did:plc:x/fm.plyr.like/3k"])
    assert set(views) == {world.t1, world.playlist}
    assert views[world.t1]["likeCount"] == 2 and views[world.playlist]["listType"] == "playlist"
