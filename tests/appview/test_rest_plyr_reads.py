"""Contract tests for the plyr.fm reads its web frontend needs beyond the feeds: tags, list permalinks,
playlist metadata, /config, sensitive images, /auth/me, and the uncapped likes, comments and likers.
Field lists are plyr.fm's models, in declaration order (zzstoatzz/plyr.fm backend/src/backend/api/...)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.auth import ServiceAuthVerifier
from appview.rest.meta import image_id
from tests.appview.authkit import SERVICE_DID, FakePlc, Key, did_doc, make_jwt
from tests.appview.test_moderation_read import label
from tests.appview.world import ART, FAN, FAN2, TRACK, client
from tests.ingester import events as ev

PLAYLIST_KEYS = ["id", "name", "owner_did", "owner_handle", "track_count", "image_url", "show_on_profile",
                 "atproto_record_uri", "is_private", "created_at", "preview_thumbnails"]  # lists/schemas.py
CONFIG_KEYS = ["max_upload_size_mb", "max_image_size_mb", "browser_observability", "default_hidden_tags",
               "bufo_exclude_patterns", "bufo_include_patterns", "contact_email", "privacy_email", "dmca_email",
               "dmca_registration_number", "terms_last_updated"]  # meta.py get_public_config


async def test_tags_are_honestly_empty_and_routed_before_track_ids(world: Any) -> None:
    async with client(world.db_url) as c:
        queries: list[dict[str, str | int]] = [{"limit": 15}, {}, {"q": "amb", "limit": 10}]
        for params in queries:
            r = await c.get("/tracks/tags", params=params)
            assert r.status_code == 200 and r.json() == []
        assert (await c.get("/tracks/tags", params={"limit": 0})).status_code == 400
        assert (await c.get("/tracks/tags", params={"limit": 101})).status_code == 400
        for name, shown in (("ambient", "ambient"), ("Funk / Soul", "funk / soul"), ("7/4", "7/4")):
            r = await c.get(f"/tracks/tags/{name}")
            assert r.status_code == 404 and r.json() == {"detail": f"tag '{shown}' not found"}
        # The track routes still work around them.
        tid = (await c.get("/tracks/")).json()["tracks"][0]["id"]
        assert (await c.get(f"/tracks/{tid}")).status_code == 200
        assert (await c.get("/tracks/top")).status_code == 200


async def test_list_by_uri(world: Any) -> None:
    async with client(world.db_url) as c:
        album = (await c.get("/lists/by-uri", params={"uri": world.album})).json()
        assert list(album) == ["type", "id", "handle", "slug"]
        assert album["type"] == "album" and album["handle"] == "artist.test" and album["slug"] == "night-tapes"
        assert (await c.get(f"/albums/{album['handle']}/{album['slug']}")).json()["metadata"]["id"] == album["id"]
        pl = (await c.get("/lists/by-uri", params={"uri": world.playlist})).json()
        assert pl == {"type": "playlist", "id": pl["id"], "handle": None, "slug": None}
        assert (await c.get(f"/lists/playlists/{pl['id']}")).json()["atproto_record_uri"] == world.playlist
        # The handle form of the same URI resolves too.
        handle_form = world.playlist.replace(FAN, "fan.test")
        assert (await c.get("/lists/by-uri", params={"uri": handle_form})).json() == pl
        for bad in (world.t1, "at://did:plc:nobodyaaaaaaaaaaaaaaaaaa/fm.plyr.list/3kzzzzzzzzzzz", "not a uri",
                    "at://nobody.invalid/fm.plyr.list/x", "", "at://" + "a" * 10_000, "at://\x00/fm.plyr.list/x"):
            r = await c.get("/lists/by-uri", params={"uri": bad})
            assert r.status_code == 404 and r.json() == {"detail": "list not found"}, bad
        assert (await c.get("/lists/by-uri")).status_code == 400  # uri is required


async def test_list_by_uri_hides_taken_down_lists(world: Any) -> None:
    await label(world, world.playlist, "!takedown")
    async with client(world.db_url) as c:
        assert (await c.get("/lists/by-uri", params={"uri": world.playlist})).status_code == 404


async def test_playlist_meta(world: Any) -> None:
    async with client(world.db_url) as c:
        full = (await c.get("/lists/playlists/by-uri", params={"uri": world.playlist})).json()
        meta = (await c.get(f"/lists/playlists/{full['id']}/meta")).json()
        assert list(meta) == PLAYLIST_KEYS
        assert meta == {k: full[k] for k in PLAYLIST_KEYS}
        for bad in ("999999", "abc", "1" * 40, "-1", "%00"):
            r = await c.get(f"/lists/playlists/{bad}/meta")
            assert r.status_code == 404 and r.json() == {"detail": "playlist not found"}, bad


async def test_config(world: Any) -> None:
    async with client(world.db_url, contact_email="ops@appview.example") as c:
        cfg = (await c.get("/config")).json()
        assert list(cfg) == CONFIG_KEYS
        assert cfg["max_upload_size_mb"] == 0 and cfg["browser_observability"] is False
        assert cfg["contact_email"] == cfg["privacy_email"] == cfg["dmca_email"] == "ops@appview.example"
        assert cfg["default_hidden_tags"] == ["ai", "ai-slop", "suno"]
        assert isinstance(cfg["terms_last_updated"], str)


async def test_sensitive_images_from_labels(world: Any) -> None:
    async with client(world.db_url) as c:
        empty = await c.get("/moderation/sensitive-images")
        assert empty.json() == {"image_ids": [], "urls": []}
        assert "max-age" in empty.headers["cache-control"]
    nudity = {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nudity"}]}
    world.put(ART, TRACK, ev.track("self labelled", imageUrl="https://pub-x.r2.dev/selfimg.png", labels=nudity))
    world.put(FAN, "fm.plyr.actor.profile", ev.profile("hi") | {"avatar": "https://cdn.example/fan.jpg"}, rkey="self")
    world.put(FAN2, TRACK, ev.track("not adult", imageUrl="https://images.plyr.fm/images/safe1.jpg"))
    await world.flush()
    await label(world, world.t1, "porn")  # artwork https://images.plyr.fm/images/abc123.jpg
    await label(world, FAN, "sexual")  # an account: its avatar
    await label(world, FAN2, "!hide")  # not an adult value: not a sensitive image
    async with client(world.db_url) as c:
        body = (await c.get("/moderation/sensitive-images")).json()
        assert list(body) == ["image_ids", "urls"]
        assert set(body["urls"]) == {"https://images.plyr.fm/images/abc123.jpg", "https://pub-x.r2.dev/selfimg.png",
                                     "https://cdn.example/fan.jpg"}
        assert set(body["image_ids"]) == {"abc123", "selfimg"}
    await label(world, world.t1, "porn", neg=True, cts="2026-11-24T13:00:00.000Z")
    async with client(world.db_url) as c:
        assert "https://images.plyr.fm/images/abc123.jpg" not in (await c.get("/moderation/sensitive-images")).json()[
            "urls"]


@given(st.text(max_size=200))
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_image_id_never_raises(url: str) -> None:
    got = image_id(url)
    assert got is None or (got and "/" not in got and "." not in got)


async def test_auth_me(world: Any) -> None:
    key = Key("k256")
    plc = FakePlc()
    plc.docs[FAN] = did_doc(FAN, key)
    async with client(world.db_url, service_did=SERVICE_DID) as c:
        r = await c.get("/auth/me")
        assert r.status_code == 401 and r.json() == {"detail": "not authenticated - login required"}
        cookie = await c.get("/auth/me", headers={"Cookie": "session_id=abc"})
        assert cookie.status_code == 401  # we hold no plyr.fm sessions
        bad = await c.get("/auth/me", headers={"Authorization": "Bearer not.a.jwt"})
        assert bad.status_code == 401 and "detail" in bad.json()
        c._transport.app.state.auth = ServiceAuthVerifier(plc.resolver(), SERVICE_DID)  # type: ignore[attr-defined]
        me = (await c.get("/auth/me", headers={"Authorization": f"Bearer {make_jwt(key, FAN)}"})).json()
        assert me == {"did": FAN, "handle": "fan.test", "linked_accounts": [], "enabled_flags": [],
                      "permissioned_spaces": {"supported": False, "granted": False, "reader": False}}


@pytest.fixture
async def crowd(world: Any) -> Any:
    """1,205 likers and 1,105 comments on t2, 1,030 likes by one fan: over every old cap."""
    for i in range(1205):
        world.put(f"did:plc:liker{i:019d}", "fm.plyr.like", ev.like(world.t2))
    for i in range(1105):
        world.put(FAN2, "fm.plyr.comment", ev.comment(world.t2, f"c{i}", ms=i * 7 % 5000))
    for i in range(1030):
        world.t_extra = world.put(ART, TRACK, ev.track(f"bulk {i}"))
        world.put(FAN2, "fm.plyr.like", ev.like(world.t_extra))
    await world.flush()
    return world


async def test_comments_likers_and_likes_are_never_capped(crowd: Any) -> None:
    async with client(crowd.db_url) as c:
        t2 = next(t for t in (await c.get("/users/fan.test/likes")).json()["tracks"] if t["title"] == "second wind")
        comments = (await c.get(f"/tracks/{t2['id']}/comments")).json()
        assert comments["count"] == len(comments["comments"]) == 1105 == t2["comment_count"]
        order = [(x["timestamp_ms"], x["id"]) for x in comments["comments"]]
        assert order == sorted(order)
        likers = (await c.get(f"/tracks/{t2['id']}/likes")).json()
        assert likers["count"] == len(likers["users"]) == 1206 == t2["like_count"]  # + FAN
        assert len({u["did"] for u in likers["users"]}) == 1206
        # Every liked track in one answer; count = the number listed.
        likes = (await c.get("/users/fan2.test/likes")).json()
        assert likes["count"] == len(likes["tracks"]) == 1031  # + t1
        assert "next-cursor" not in (await c.get("/users/fan2.test/likes")).headers
        # Paging is still there when asked for.
        seen, cursor = [], None
        while True:
            r = await c.get("/users/fan2.test/likes", params={"limit": 400} | ({"cursor": cursor} if cursor else {}))
            body = r.json()
            assert body["count"] == 1031
            seen += [t["id"] for t in body["tracks"]]
            cursor = r.headers.get("next-cursor")
            if cursor is None:
                break
        assert seen == [t["id"] for t in likes["tracks"]]
        assert (await c.get("/users/fan2.test/likes", params={"limit": 501})).status_code == 400
        assert (await c.get("/users/fan2.test/likes", params={"cursor": "garbage"})).status_code == 400
