"""Operator labels and teal.fm plays on every read surface: a takedown disappears from feeds, search,
lists, counts and the outbound hydrated views; a negation brings it back; plays show in views and stats."""

from __future__ import annotations

import hashlib

from core.db.connect import connect
from core.events import LabelEvent
from ingester.eventlog.labels import append_labels
from ingester.projection.runner import Projector
from tests.appview.world import ART, FAN, World, client

LABELER = "did:plc:labelerqqqqqqqqqqqqqqqq"


async def label(world: World, uri: str, val: str, *, neg: bool = False, cts: str = "2026-11-24T12:00:00.000Z",
                exp: str | None = None) -> None:
    body = {"ver": 1, "src": LABELER, "uri": uri, "val": val, "cts": cts, **({"neg": True} if neg else {}),
            **({"exp": exp} if exp else {})}
    digest = hashlib.sha256(repr(sorted(body.items())).encode()).hexdigest()
    async with await connect(world.db_url) as conn:
        await append_labels(conn, [LabelEvent(LABELER, uri, val, body, digest, "labels:test", None, True)])
        await Projector().catch_up(conn)


async def titles(c, path: str = "/tracks/") -> list[str]:  # type: ignore[no-untyped-def]
    return [t["title"] for t in (await c.get(path)).json()["tracks"]]


async def test_takedown_everywhere_then_negated(world: World) -> None:
    await label(world, world.t1, "!takedown")
    async with client(world.db_url) as c:
        assert await titles(c) == ["second wind"]
        assert (await c.get("/tracks/by-uri", params={"uri": world.t1})).status_code == 404
        assert "first light" not in await titles(c, f"/tracks/?artist_did={ART}")
        assert (await c.get("/albums/artist.test")).json()["albums"][0]["track_count"] == 1
        pl = (await c.get("/lists/playlists/by-uri", params={"uri": world.playlist})).json()
        assert [t["title"] for t in pl["tracks"]] == ["adult thing"] and pl["track_count"] == 1
        assert [t["title"] for t in (await c.get("/users/fan.test/likes")).json()["tracks"]] == ["second wind"]
        assert (await c.get("/users/fan.test/likes")).json()["count"] == 1
        assert all(t["title"] != "first light" for t in (await c.get("/tracks/top")).json())
        assert (await c.get("/stats")).json()["total_tracks"] == 2
        hits = (await c.get("/search/", params={"q": "first light"})).json()["results"]
        assert not [h for h in hits if h["type"] == "track"]
        acts = (await c.get("/activity/", params={"limit": 100})).json()["events"]
        assert all((e["track"] or {}).get("title") != "first light" for e in acts)
    from appview.views.xrpc_views import record_views
    async with await connect(world.db_url) as conn:
        assert world.t1 not in await record_views(conn, [world.t1])
    await label(world, world.t1, "!takedown", neg=True, cts="2026-11-24T13:00:00.000Z")
    async with client(world.db_url) as c:
        assert await titles(c) == ["second wind", "first light"]


async def test_account_label_expiry_and_adult_operator_label(world: World) -> None:
    await label(world, ART, "!takedown", exp="2000-01-01T00:00:00.000Z")  # expired: no effect
    await label(world, world.t2, "porn")
    async with client(world.db_url) as c:
        assert await titles(c) == ["first light"]  # adult: hidden from the feed …
        t2 = (await c.get("/tracks/by-uri", params={"uri": world.t2})).json()  # … shown on its page
        assert t2["labels"] == ["porn"]
    await label(world, ART, "!takedown")
    async with client(world.db_url) as c:
        assert await titles(c) == []
        assert (await c.get(f"/xrpc/fm.plyr.actor.getProfile?actor={ART}")).json()["trackCount"] == 0


async def test_plays_in_views_and_stats(world: World) -> None:
    for i in range(3):
        world.put(FAN, "fm.teal.feed.play", {"$type": "fm.teal.feed.play", "trackName": "first light",
                                             "artists": [{"artistName": "The Artist"}],
                                             "originUrl": world.t1, "playedTime": f"2026-11-24T1{i}:00:00.000Z"})
    await world.flush()
    async with client(world.db_url) as c:
        t1 = (await c.get("/tracks/by-uri", params={"uri": world.t1})).json()
        assert t1["play_count"] == 3
        assert (await c.get("/stats")).json()["total_plays"] == 3
        a = (await c.get(f"/artists/{ART}/analytics")).json()
        assert a["total_plays"] == 3 and a["top_item"]["title"] == "first light" and a["rank"] == 1
        album = (await c.get("/albums/artist.test")).json()["albums"][0]
        assert album["total_plays"] == 3
