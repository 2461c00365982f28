"""Records written over XRPC to the real reference PDS, read back through both API surfaces:
counts, order, hydration, and updates, deletes, unlikes, deactivation and account deletion."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from appview.app import create_app
from appview.settings import AppviewSettings
from tests.e2e.conftest import RunningIngester
from tests.e2e.test_viewer_auth import service_token
from tests.localnet.peer import Localnet, Xrpc

NOW = "2026-11-24T12:00:00.000Z"


def handle(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}.test"


def track(title: str, n: int, **extra: object) -> dict[str, Any]:
    return {"$type": "fm.plyr.track", "title": title, "artist": "Ann Artist", "fileType": "mp3",
            "audioUrl": f"https://audio.plyr.fm/audio/{n:016x}.mp3", "createdAt": f"2026-11-2{n}T12:00:00.000Z",
            **extra}


def ref(created: dict[str, Any]) -> dict[str, str]:
    return {"uri": created["uri"], "cid": created["cid"]}


SERVICE_DID = "did:web:appview.test"


@pytest.fixture
async def api(db_url: str, localnet: Localnet) -> AsyncIterator[httpx.AsyncClient]:
    # cache on, as served; viewers verified against the local PLC
    app = create_app(AppviewSettings(service_did=SERVICE_DID, plc_url=localnet.plc_url), db_url)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            yield c


async def until(fetch: Callable[[], Awaitable[Any]], check: Callable[[Any], bool], timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await fetch()
        if check(last):
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"never held; last saw {last!r}")


async def test_read_side_follows_the_pds(xrpc: Xrpc, ingester: RunningIngester, api: httpx.AsyncClient) -> None:
    ann = await xrpc.create_account(handle("ann"))
    ben = await xrpc.create_account(handle("ben"))
    await xrpc.put(ann, "fm.plyr.actor.profile", "self", {"$type": "fm.plyr.actor.profile", "bio": "hi",
                                                          "avatar": "https://cdn.example/ann.jpg", "createdAt": NOW})
    t1 = await xrpc.create(ann, "fm.plyr.track", track("Morning", 1, duration=100))
    t2 = await xrpc.create(ann, "fm.plyr.track", track("Evening", 2, features=[{"did": ben.did}]))
    like1 = await xrpc.create(ben, "fm.plyr.like", {"$type": "fm.plyr.like", "subject": ref(t1), "createdAt": NOW})
    await xrpc.create(ann, "fm.plyr.like", {"$type": "fm.plyr.like", "subject": ref(t1), "createdAt": NOW})
    await xrpc.create(ben, "fm.plyr.comment", {"$type": "fm.plyr.comment", "subject": ref(t1), "text": "wow",
                                               "timestampMs": 1500, "createdAt": NOW})
    album = await xrpc.create(ann, "fm.plyr.list", {"$type": "fm.plyr.list", "name": "Day Cycle", "listType": "album",
                                                    "items": [{"subject": ref(t2)}, {"subject": ref(t1)}],
                                                    "createdAt": NOW})

    async def feed() -> list[dict[str, Any]]:
        return (await api.get("/tracks/", params={"artist_did": ann.did})).json().get("tracks", [])

    tracks = await until(feed, lambda ts: len(ts) == 2 and ts[1]["like_count"] == 2 and ts[1]["comment_count"] == 1
                         and ts[0]["album"] is not None)
    assert [t["title"] for t in tracks] == ["Evening", "Morning"]
    assert tracks[0]["artist_handle"] == ann.handle and tracks[0]["artist_avatar_url"] == "https://cdn.example/ann.jpg"
    assert tracks[0]["features"][0]["did"] == ben.did and tracks[0]["features"][0]["handle"] == ben.handle
    assert tracks[1]["atproto_record_cid"] == t1["cid"]

    x = (await api.get("/xrpc/fm.plyr.feed.getAlbumTracks", params={"uri": album["uri"]})).json()
    assert [t["uri"] for t in x["tracks"]] == [t2["uri"], t1["uri"]] and x["list"]["name"] == "Day Cycle"
    prof = (await api.get("/xrpc/fm.plyr.actor.getProfile", params={"actor": ann.handle})).json()
    assert (prof["trackCount"], prof["albumCount"], prof["likeCount"], prof["commentCount"]) == (2, 1, 2, 1)
    # viewer state: ben's own service-auth token, minted by his PDS for our audience
    token = await service_token(xrpc, ben, SERVICE_DID)
    mine = (await api.get("/tracks/", params={"artist_did": ann.did},
                          headers={"Authorization": f"Bearer {token}"})).json()["tracks"]
    assert [t["is_liked"] for t in mine] == [False, True]
    x_mine = (await api.get("/xrpc/fm.plyr.feed.getArtistTracks", params={"actor": ann.did},
                            headers={"Authorization": f"Bearer {token}"})).json()["tracks"]
    assert [t["viewer"]["liked"] for t in x_mine] == [False, True]
    await xrpc.create(ben, "fm.plyr.list", {"$type": "fm.plyr.list", "name": "bens mix", "listType": "playlist",
                                           "items": [{"subject": ref(t1)}], "createdAt": NOW})
    own = await until(lambda: api.get("/lists/playlists", headers={"Authorization": f"Bearer {token}"}),
                      lambda r: r.status_code == 200 and len(r.json()) == 1)
    assert own.json()[0]["name"] == "bens mix"
    assert (await api.get("/lists/playlists")).status_code == 401
    bad = await api.get("/tracks/", headers={"Authorization": "Bearer not.a.jwt"})
    assert bad.status_code == 401 and bad.json()["detail"]
    likes = (await api.get(f"/users/{ben.handle}/likes")).json()
    assert likes["count"] == 1 and likes["tracks"][0]["title"] == "Morning"

    # update, unlike, delete
    await xrpc.put(ann, "fm.plyr.track", t1["uri"].rsplit("/", 1)[1], track("Morning (edit)", 1, duration=100))
    await xrpc.delete(ben, "fm.plyr.like", like1["uri"].rsplit("/", 1)[1])
    await xrpc.delete(ann, "fm.plyr.track", t2["uri"].rsplit("/", 1)[1])
    tracks = await until(feed, lambda ts: len(ts) == 1 and ts[0]["title"] == "Morning (edit)"
                         and ts[0]["like_count"] == 1)
    got = await api.get("/xrpc/fm.plyr.track.getTrack", params={"uri": t2["uri"]})
    assert got.status_code == 404 and got.json()["error"] == "NotFound"

    # deactivation hides everything of the account; reactivation brings it back
    await xrpc.call("com.atproto.server.deactivateAccount", {}, ann)
    await until(lambda: api.get(f"/artists/{ann.did}"), lambda r: r.status_code == 404)
    assert await feed() == []
    await xrpc.call("com.atproto.server.activateAccount", None, ann)
    await until(feed, lambda ts: len(ts) == 1)

    # account deletion removes the records and the likes they gave
    await xrpc.call("com.atproto.admin.deleteAccount", {"did": ann.did}, admin=True)
    await until(feed, lambda ts: ts == [])
    await until(lambda: api.get(f"/users/{ben.handle}/likes"), lambda r: r.json()["count"] == 0)
