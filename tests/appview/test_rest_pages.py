"""plyr-compatible REST pages beyond the track feeds: artists, albums, playlists, likes, stats, activity."""

from __future__ import annotations

from tests.appview.world import ART, FAN, World, client


async def test_artist_profile_and_analytics(world: World) -> None:
    async with client(world.db_url) as c:
        a = (await c.get("/artists/by-handle/artist.test")).json()
        assert list(a) == ["did", "handle", "display_name", "bio", "avatar_url", "created_at", "updated_at",
                           "show_liked_on_profile", "support_url"]
        assert a["did"] == ART and a["display_name"] == "The Artist" and a["bio"] == "i make sounds"
        assert a["created_at"].endswith("Z")
        assert (await c.get(f"/artists/{ART}")).json() == a
        stats = (await c.get(f"/artists/{ART}/analytics")).json()
        assert stats["total_items"] == 3 and stats["total_duration_seconds"] == 180
        assert stats["top_liked"]["title"] == "first light" and stats["top_liked"]["play_count"] == 2


async def test_albums(world: World) -> None:
    async with client(world.db_url) as c:
        all_ = (await c.get("/albums/")).json()["albums"]
        assert all_ == [{"id": all_[0]["id"], "title": "Night Tapes", "slug": "night-tapes", "artist": "The Artist",
                         "artist_handle": "artist.test", "track_count": 2}]
        mine = (await c.get("/albums/artist.test")).json()["albums"]
        assert mine[0]["image_url"] == "https://images.plyr.fm/images/abc123.jpg" and mine[0]["track_count"] == 2
        album = (await c.get("/albums/artist.test/night-tapes")).json()
        assert album["metadata"]["list_uri"] == world.album and album["metadata"]["track_count"] == 2
        assert [t["title"] for t in album["tracks"]] == ["second wind", "first light"]  # the record's order


async def test_playlists(world: World) -> None:
    async with client(world.db_url) as c:
        pl = (await c.get("/lists/playlists/by-uri", params={"uri": world.playlist})).json()
        assert pl["name"] == "mix" and pl["owner_handle"] == "fan.test" and pl["track_count"] == 2
        assert [t["title"] for t in pl["tracks"]] == ["first light", "adult thing"]  # VIEW context shows adult
        assert (await c.get(f"/lists/playlists/{pl['id']}")).json() == pl
        mine = (await c.get(f"/lists/playlists/by-artist/{FAN}")).json()
        assert [p["name"] for p in mine] == ["mix"] and "tracks" not in mine[0]


async def test_user_likes(world: World) -> None:
    async with client(world.db_url) as c:
        body = (await c.get("/users/fan.test/likes")).json()
        assert body["user"]["did"] == FAN and body["count"] == 2
        assert [t["title"] for t in body["tracks"]] == ["second wind", "first light"]
        page = (await c.get("/users/fan.test/likes", params={"limit": 1})).json()
        assert len(page["tracks"]) == 1 and page["count"] == 2


async def test_stats_activity_histogram_oembed(world: World) -> None:
    async with client(world.db_url) as c:
        assert (await c.get("/stats")).json() == {"total_plays": 0, "total_tracks": 3, "total_artists": 1,
                                                 "total_duration_seconds": 180}
        act = (await c.get("/activity/", params={"limit": 100})).json()
        kinds = [e["type"] for e in act["events"]]
        assert kinds.count("like") == 4 and kinds.count("track") == 2 and kinds.count("comment") == 2
        assert "album_release" in kinds and "playlist_create" in kinds and act["has_more"] is False
        seen, cursor = [], None
        while True:
            body = (await c.get("/activity/", params={"limit": 3} | ({"cursor": cursor} if cursor else {}))).json()
            seen += [(e["type"], e["created_at"], e["actor"]["did"]) for e in body["events"]]
            if not body["has_more"]:
                break
            cursor = body["next_cursor"]
        assert len(seen) == len(act["events"])
        hist = (await c.get("/activity/histogram", params={"days": 3})).json()["buckets"]
        assert len(hist) == 3 and all(set(b) == {"date", "count"} for b in hist)
        tid = (await c.get("/tracks/by-uri", params={"uri": world.t1})).json()["id"]
        emb = (await c.get("/oembed", params={"url": f"https://plyr.fm/track/{tid}"})).json()
        assert emb["title"] == "first light - The Artist" and emb["thumbnail_width"] == 300
        assert f"https://plyr.fm/embed/track/{tid}" in emb["html"]
        alb = (await c.get("/oembed", params={"url": "https://plyr.fm/u/artist.test/album/night-tapes"})).json()
        assert alb["height"] == 380
