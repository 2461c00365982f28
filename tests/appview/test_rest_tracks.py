"""plyr-compatible REST over a known world: shapes, counts, order, moderation, pagination, bad input."""

from __future__ import annotations

import pytest

from tests.appview.conftest import at
from tests.appview.world import ART, FAN, FAN2, TRACK, World, client
from tests.ingester import events as ev

TRACK_KEYS = [
    "id", "title", "artist", "artist_handle", "artist_did", "artist_avatar_url", "file_id", "file_type", "features",
    "r2_url", "atproto_record_uri", "atproto_record_cid", "atproto_record_url", "play_count", "created_at",
    "image_url", "thumbnail_url", "is_liked", "like_count", "comment_count", "album", "tags", "copyright_flagged",
    "copyright_match", "support_gate", "gated", "downloadable", "download_policy", "artist_support_url",
    "copyright_song_uri", "copyright_recording_uri", "original_file_id", "original_file_type", "description",
    "audio_storage", "pds_blob_cid", "is_optimizing", "visibility", "unlisted", "self_labels", "operator_labels",
    "labels",
]


async def test_feed_shape_order_counts_and_hydration(world: World) -> None:
    async with client(world.db_url) as c:
        r = await c.get("/tracks/")
        assert r.status_code == 200
        body = r.json()
        assert list(body) == ["tracks", "next_cursor", "has_more"]
        titles = [t["title"] for t in body["tracks"]]
        assert titles == ["second wind", "first light"]  # newest first; the adult track is hidden in feeds
        t2, t1 = body["tracks"]
        assert list(t1) == TRACK_KEYS
        assert t1["like_count"] == 2 and t1["comment_count"] == 2 and t2["like_count"] == 1
        assert t1["artist_handle"] == "artist.test" and t1["artist"] == "The Artist"
        assert t1["artist_avatar_url"] == "https://cdn.example/a.jpg"
        assert t1["thumbnail_url"] == "https://images.plyr.fm/images/abc123_thumb.webp"
        assert t1["created_at"] == "2026-11-01T10:00:00+00:00"
        assert t1["atproto_record_uri"] == world.t1
        assert t1["atproto_record_url"].startswith("https://pds.example/xrpc/com.atproto.repo.getRecord?repo=")
        assert t1["album"]["title"] == "Night Tapes" and t1["album"]["slug"] == "night-tapes"
        assert t2["features"] == [{"did": FAN, "handle": "fan.test", "display_name": "fan.test", "avatar_url": None}]
        assert t1["tags"] == [] and t1["visibility"] == "public" and t1["is_liked"] is False


async def test_cursor_pages_never_skip_or_repeat(world: World) -> None:
    for i in range(7):
        world.put(ART, TRACK, ev.track(f"same instant {i}", createdAt=at(5)))
    await world.flush()
    async with client(world.db_url) as c:
        seen: list[int] = []
        cursor = None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            body = (await c.get("/tracks/", params=params)).json()
            seen += [t["id"] for t in body["tracks"]]
            # records arriving meanwhile never disturb the pages already walked
            world.put(ART, TRACK, ev.track("newcomer"))
            await world.flush()
            if not body["has_more"]:
                break
            cursor = body["next_cursor"]
        assert len(seen) == len(set(seen)) == 9


async def test_detail_by_id_and_uri_and_adult_in_view_context(world: World) -> None:
    async with client(world.db_url) as c:
        feed = (await c.get("/tracks/")).json()["tracks"]
        t1 = next(t for t in feed if t["title"] == "first light")
        detail = (await c.get(f"/tracks/{t1['id']}")).json()
        assert detail["atproto_record_url"] is None and detail["like_count"] == 2
        assert (await c.get("/tracks/by-uri", params={"uri": world.t1})).json()["id"] == t1["id"]
        by_handle = world.t1.replace(ART, "artist.test")
        assert (await c.get("/tracks/by-uri", params={"uri": by_handle})).json()["id"] == t1["id"]
        adult = (await c.get("/tracks/by-uri", params={"uri": world.t3})).json()
        assert adult["self_labels"] == ["porn"] and adult["labels"] == ["porn"]
        page = (await c.get("/tracks/", params={"artist_did": ART})).json()["tracks"]
        assert [t["title"] for t in page] == ["adult thing", "second wind", "first light"]


async def test_top_comments_likers(world: World) -> None:
    async with client(world.db_url) as c:
        top = (await c.get("/tracks/top", params={"period": "all_time"})).json()
        assert [(t["title"], t["like_count"]) for t in top] == [("first light", 2), ("second wind", 1)]
        tid1 = top[0]["id"]
        comments = (await c.get(f"/tracks/{tid1}/comments")).json()
        assert [x["text"] for x in comments["comments"]] == ["early", "late"]
        assert comments["count"] == 2 and comments["comments_enabled"] is True
        assert comments["comments"][0]["user_handle"] == "fan.test"
        likers = (await c.get(f"/tracks/{tid1}/likes")).json()
        assert likers["count"] == 2 and {u["did"] for u in likers["users"]} == {FAN, FAN2}


async def test_deactivation_hides_and_counts_follow(world: World) -> None:
    world.account(FAN2, False, "deactivated")
    world.account(ART, True)
    await world.flush()
    async with client(world.db_url) as c:
        t1 = (await c.get("/tracks/by-uri", params={"uri": world.t1})).json()
        assert t1["like_count"] == 1 and t1["comment_count"] == 1
    world.account(ART, False, "takendown")
    await world.flush()
    async with client(world.db_url) as c:
        assert (await c.get("/tracks/")).json()["tracks"] == []
        assert (await c.get("/tracks/by-uri", params={"uri": world.t1})).status_code == 404
        assert (await c.get(f"/artists/{ART}")).status_code == 404
    world.account(ART, True)
    world.account(FAN2, True)
    await world.flush()
    async with client(world.db_url) as c:
        assert len((await c.get("/tracks/")).json()["tracks"]) == 2


async def test_updates_deletes_unlikes(world: World) -> None:
    rkey = world.t2.rsplit("/", 1)[1]
    world.put(ART, TRACK, ev.track("second wind (remaster)", createdAt=at(2)), rkey=rkey, action="update")
    world.delete(world.t1)
    await world.flush()
    async with client(world.db_url) as c:
        titles = [t["title"] for t in (await c.get("/tracks/")).json()["tracks"]]
        assert titles == ["second wind (remaster)"]
        assert (await c.get("/tracks/by-uri", params={"uri": world.t1})).status_code == 404


@pytest.mark.parametrize("path", [
    "/tracks/?limit=0", "/tracks/?limit=101", "/tracks/?limit=abc", "/tracks/?cursor=yesterday",
    "/tracks/?cursor=2026-01-01T00:00:00Z::x", "/tracks/top?period=decade", "/tracks/by-uri?uri=nope",
    "/tracks/by-uri?uri=at://did:plc:x/fm.plyr.like/abc", "/tracks/notanumber", "/activity/?cursor=%00",
    "/activity/histogram?days=31", "/users/not a handle/likes",
])
async def test_bad_params_are_400_with_a_message(world: World, path: str) -> None:
    async with client(world.db_url) as c:
        r = await c.get(path)
        assert r.status_code == 400, (path, r.text)
        assert isinstance(r.json()["detail"], str) and r.json()["detail"]


@pytest.mark.parametrize("path", [
    "/tracks/999999", "/tracks/by-uri?uri=at://did:plc:nobody/fm.plyr.track/3kaaaaaaaaaaa",
    "/artists/by-handle/nobody.test", "/artists/did:plc:nobody", "/albums/artist.test/nope",
    "/lists/playlists/999999", "/lists/playlists/not-a-uuid", "/users/nobody.test/likes", "/tracks/999999/comments",
    "/oembed?url=https://plyr.fm/track/999999",
])
async def test_unknown_things_are_404(world: World, path: str) -> None:
    async with client(world.db_url) as c:
        r = await c.get(path)
        assert r.status_code == 404, (path, r.text)
        assert isinstance(r.json()["detail"], str)
