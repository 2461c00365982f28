# ruff: noqa: RUF001 — curly apostrophes are the point
"""Search end to end: records written over XRPC to the real reference PDS, followed by our ingester,
found through the real app (exact, prefix, typo, accents both ways, curly quotes, moderation)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from appview.app import create_app
from appview.settings import AppviewSettings
from tests.e2e.conftest import Query, RunningIngester, eventually
from tests.localnet.peer import Xrpc

NOW = "2026-11-24T12:00:00.000Z"


def track(title: str, artist: str, **extra: object) -> dict[str, Any]:
    return {"$type": "fm.plyr.track", "title": title, "artist": artist, "fileType": "mp3",
            "audioUrl": "https://audio.plyr.fm/audio/x.mp3", "createdAt": NOW, **extra}


async def test_search_finds_what_the_pds_holds(xrpc: Xrpc, ingester: RunningIngester, q: Query,
                                               db_url: str) -> None:
    tag = uuid.uuid4().hex[:6]
    alice = await xrpc.create_account(f"alice{tag}.test")
    carol = await xrpc.create_account(f"carol{tag}.test")
    target = await xrpc.create(alice, "fm.plyr.track", track("you don’t know the shape i’m in", "Alice Lenderman"))
    cafe = await xrpc.create(alice, "fm.plyr.track", track("Café del Mar", "Alice Lenderman"))
    await xrpc.create(alice, "fm.plyr.track", track("cafe racer", "Alice Lenderman"))
    await xrpc.create(alice, "fm.plyr.track", track("Café explicit", "Alice Lenderman", labels={
        "$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "sexual"}]}))
    await xrpc.create(alice, "fm.plyr.list", {
        "$type": "fm.plyr.list", "name": "Shapes of Cafés", "listType": "album", "createdAt": NOW,
        "items": [{"subject": {"uri": t["uri"], "cid": t["cid"]}} for t in (target, cafe)]})
    await xrpc.create(carol, "fm.plyr.track", track("Café at midnight", "Carol"))
    await eventually(q, "SELECT count(*) FROM track", [(5,)])
    await eventually(q, "SELECT count(*) FROM list", [(1,)])
    await eventually(q, "SELECT count(*) FROM actor WHERE handle IS NOT NULL", [(2,)])

    app = create_app(AppviewSettings(response_cache=False), db_url)  # reads its own writes at once
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as c:

        async def search(query: str, **params: Any) -> dict[str, Any]:
            r = await c.get("/search/", params={"q": query, **params})
            assert r.status_code == 200, r.text
            return r.json()

        def titles(body: dict[str, Any]) -> list[str]:
            return [x["title"] for x in body["results"] if x["type"] == "track"]

        assert titles(await search("you don't kn", type="tracks"))[0] == "you don’t know the shape i’m in"
        assert titles(await search("you dont know", type="tracks"))[0] == "you don’t know the shape i’m in"
        cafes = titles(await search("cafe", type="tracks"))
        assert set(cafes) == {"Café del Mar", "cafe racer", "Café at midnight"}  # adult label hidden
        assert titles(await search("CAFÉ DEL MAR"))[0] == "Café del Mar"  # exact, accent folded
        assert titles(await search("cafe del mra", type="tracks"))[0] == "Café del Mar"  # typo
        body = await search("lenderman")
        artist = next(x for x in body["results"] if x["type"] == "artist")
        assert (artist["did"], artist["handle"], artist["display_name"]) == (
            alice.did, alice.handle, "Alice Lenderman")
        album = next(x for x in (await search("shapes of cafes"))["results"] if x["type"] == "album")
        assert (album["title"], album["relevance"], album["artist_handle"]) == ("Shapes of Cafés", 5.0, alice.handle)
        r = await c.get("/xrpc/fm.plyr.search.searchTracks", params={"q": "café", "limit": 2})
        assert r.status_code == 200 and len(r.json()["tracks"]) == 2 and r.json()["cursor"] == "2"

        # A deleted record and a deactivated account drop out of search.
        await xrpc.delete(alice, "fm.plyr.track", cafe["uri"].rsplit("/", 1)[1])
        await xrpc.call("com.atproto.server.deactivateAccount", {}, carol)
        await eventually(q, "SELECT count(*) FROM track WHERE uri = %s", [(0,)], cafe["uri"])
        await eventually(q, "SELECT active FROM actor WHERE did = %s", [(False,)], carol.did)
        assert titles(await search("cafe", type="tracks")) == ["cafe racer"]
