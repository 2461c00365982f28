"""Bluesky profiles on the read side: display name, avatar and description of artists, featured artists,
likers and commenters, in plyr REST and our XRPC (responses checked against the lexicons)."""

from __future__ import annotations

from typing import Any

import pytest

from appview.hydration.actors import avatar_url
from core.events import RepoEvent
from tests.appview.test_xrpc import xrpc
from tests.appview.world import ART, FAN, FAN2, World, client
from tests.ingester import events as ev

PROFILE = "app.bsky.actor.profile"
CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def blob_url(did: str, pds: str = "https://pds.example") -> str:
    return f"{pds}/xrpc/com.atproto.sync.getBlob?did={did.replace(':', '%3A')}&cid={CID}"


def bsky(name: str | None, description: str | None = None, mime: str = "image/jpeg") -> dict[str, Any]:
    out: dict[str, Any] = {"$type": PROFILE, "avatar": {"$type": "blob", "ref": {"$link": CID}, "mimeType": mime,
                                                        "size": 900}}
    if name is not None:
        out["displayName"] = name
    if description is not None:
        out["description"] = description
    return out


# ---------------------------------------------------------------- the avatar URL rule


def test_avatar_url_is_the_pds_get_blob_for_https_pdses_only() -> None:
    assert avatar_url("https://pds.example/", ART, CID) == blob_url(ART)
    assert avatar_url("http://localhost:2583", ART, CID) is None  # local development: no http image URLs
    for pds in ("http://pds.example", "javascript:alert(1)//", "https://", "https://user:pw@pds.example",
                "https://pds.example/?x=1", "https://pds.example/#f", "ftp://pds.example", "", None,
                "https://[::1", "data:text/html,hi"):
        assert avatar_url(pds, ART, CID) is None, pds
    assert avatar_url("https://pds.example", ART, None) is None
    assert avatar_url("https://pds.example", ART, "not a cid\"><script>") is None
    assert avatar_url("https://pds.example", "did:evil&cid=x", CID) is None


# ---------------------------------------------------------------- the views


@pytest.fixture
async def profiled(world: World) -> World:
    world.put(ART, PROFILE, bsky("Artist On Bluesky", "bluesky bio"), rkey="self")
    world.put(FAN, PROFILE, bsky("Fan One"), rkey="self")
    world.put(FAN2, PROFILE, bsky(None, "no name set"), rkey="self")  # avatar, but no display name
    await world.flush()
    return world


async def test_rest_artist_page(profiled: World) -> None:
    async with client(profiled.db_url) as c:
        a = (await c.get(f"/artists/{ART}")).json()
        assert a["display_name"] == "Artist On Bluesky" and a["avatar_url"] == blob_url(ART)
        assert a["bio"] == "i make sounds"  # plyr's own bio wins over the Bluesky description
        fan = (await c.get(f"/users/{FAN}/likes")).json()["user"]
        assert fan == {"did": FAN, "handle": "fan.test", "display_name": "Fan One", "avatar_url": blob_url(FAN)}


async def test_rest_track_actor_parts(profiled: World) -> None:
    async with client(profiled.db_url) as c:
        tracks = {t["title"]: t for t in (await c.get("/tracks/", params={"artist_did": ART})).json()["tracks"]}
        t1, t2 = tracks["first light"], tracks["second wind"]
        assert t1["artist"] == "Artist On Bluesky" and t1["artist_avatar_url"] == blob_url(ART)
        assert t2["features"] == [{"did": FAN, "handle": "fan.test", "display_name": "Fan One",
                                   "avatar_url": blob_url(FAN)}]
        assert (await c.get(f"/tracks/{t1['id']}")).json()["artist"] == "Artist On Bluesky"
        likers = {u["did"]: u for u in (await c.get(f"/tracks/{t1['id']}/likes")).json()["users"]}
        assert likers[FAN]["display_name"] == "Fan One" and likers[FAN]["avatar_url"] == blob_url(FAN)
        # no Bluesky display name: the fallback (handle, this account has no track), the avatar still shows
        assert likers[FAN2]["display_name"] == "fan2.test" and likers[FAN2]["avatar_url"] == blob_url(FAN2)
        comments = (await c.get(f"/tracks/{t1['id']}/comments")).json()["comments"]
        assert {(x["user_display_name"], x["user_avatar_url"]) for x in comments} == {
            ("Fan One", blob_url(FAN)), ("fan2.test", blob_url(FAN2))}


async def test_xrpc_views(profiled: World) -> None:
    async with client(profiled.db_url) as c:
        p = await xrpc(c, "fm.plyr.actor.getProfile", actor=ART)
        assert (p["displayName"], p["avatar"], p["bio"], p["description"]) == (
            "Artist On Bluesky", blob_url(ART), "i make sounds", "bluesky bio")
        t2: str = getattr(profiled, "t2")  # noqa: B009  (set by the world fixture)
        t = (await xrpc(c, "fm.plyr.track.getTrack", uri=t2))["track"]
        assert t["artist"]["displayName"] == "Artist On Bluesky" and t["artist"]["avatar"] == blob_url(ART)
        assert t["artistName"] == "The Artist"  # the record's own string is kept beside it
        assert t["features"][0]["displayName"] == "Fan One"


async def test_fallbacks_without_a_profile_and_after_deletion(profiled: World) -> None:
    profiled.delete(f"at://{ART}/{PROFILE}/self")
    await profiled.flush()
    async with client(profiled.db_url) as c:
        a = (await c.get(f"/artists/{ART}")).json()
        assert (a["display_name"], a["avatar_url"]) == ("The Artist", "https://cdn.example/a.jpg")
        t = (await c.get("/tracks/", params={"artist_did": ART})).json()["tracks"][0]
        assert (t["artist"], t["artist_avatar_url"]) == ("The Artist", "https://cdn.example/a.jpg")
        p = await xrpc(c, "fm.plyr.actor.getProfile", actor=ART)
        assert p["displayName"] == "The Artist" and "description" not in p


async def test_description_stands_in_for_a_missing_plyr_bio(profiled: World) -> None:
    profiled.delete(f"at://{ART}/fm.plyr.actor.profile/self")
    await profiled.flush()
    async with client(profiled.db_url) as c:
        a = (await c.get(f"/artists/{ART}")).json()
        assert a["bio"] == "bluesky bio" and a["avatar_url"] == blob_url(ART)


async def test_an_http_pds_gives_no_avatar_url(profiled: World) -> None:
    profiled.pending.append(RepoEvent(ART, "identity", {"handle": "artist.test", "pds": "http://pds.example",
                                                        "signing_key": "did:key:zQ3sh"}, "test"))
    await profiled.flush()
    async with client(profiled.db_url) as c:
        a = (await c.get(f"/artists/{ART}")).json()
        assert a["avatar_url"] == "https://cdn.example/a.jpg"  # the plyr profile's URL, not an http blob URL
        t = (await c.get("/tracks/", params={"artist_did": ART})).json()["tracks"][0]
        assert t["artist_avatar_url"] == "https://cdn.example/a.jpg"


async def test_hostile_display_names_are_served_as_data(world: World) -> None:
    name = "<img src=x onerror=alert(1)>\u202e" + "é" * 40
    world.put(ART, PROFILE, bsky(name), rkey="self")
    await world.flush()
    async with client(world.db_url) as c:
        assert (await c.get(f"/artists/{ART}")).json()["display_name"] == name
        assert (await xrpc(c, "fm.plyr.actor.getProfile", actor=ART))["displayName"] == name


async def test_an_inactive_account_profile_is_hidden_with_it(profiled: World) -> None:
    profiled.pending.append(ev.account(ART, False, "deactivated"))
    await profiled.flush()
    async with client(profiled.db_url) as c:
        assert (await c.get(f"/artists/{ART}")).status_code == 404
