"""Accounts that are not active never appear with a handle, and answer the same everywhere:
404 ActorNotFound for the actor itself in every namespace."""

from __future__ import annotations

import json

import pytest

from core.lexicon import default_lexicons
from core.lexicon_methods import load_queries
from tests.appview.world import ART, FAN, GONE, TRACK, World, client
from tests.ingester import events as ev

GONE_HANDLE = "gone-account.test"
NOBODY = "did:plc:nobodyaaaaaaaaaaaaaaaaaa"
METHODS = load_queries(default_lexicons())
ACTOR_METHODS = sorted(n for n, m in METHODS.items() if "actor" in m.params)


class GoneWorld(World):
    t1: str
    gone_track: str


@pytest.fixture
async def world(db_url: str) -> GoneWorld:
    w = GoneWorld(db_url)
    w.actor(ART, "artist.test")
    w.actor(FAN, "fan.test")
    w.actor(GONE, GONE_HANDLE)
    w.put(GONE, "fm.plyr.actor.profile", ev.profile("bye") | {"avatar": "https://cdn.example/gone.jpg"}, rkey="self")
    w.t1 = w.put(ART, TRACK, ev.track("featuring", artist="The Artist",
                                      features=[{"did": GONE, "handle": GONE_HANDLE, "displayName": "Gone"},
                                                {"did": FAN, "handle": "fan.test"}]))
    w.gone_track = w.put(GONE, TRACK, ev.track("gone song", artist="Gone Artist"))
    w.put(GONE, "fm.plyr.like", ev.like(w.t1))
    w.put(GONE, "fm.plyr.comment", ev.comment(w.t1, "from beyond"))
    w.put(GONE, "fm.plyr.list", ev.plist([w.t1], name="gone mix"))
    w.put(FAN, "fm.plyr.like", ev.like(w.t1))
    await w.flush()
    return w


@pytest.mark.parametrize("status", ["deleted", "takendown", "deactivated"])
async def test_inactive_accounts_never_appear_with_a_handle(db_url: str, world: GoneWorld, status: str) -> None:
    world.account(GONE, False, status)
    await world.flush()
    async with client(db_url) as http:
        track_id = (await http.get("/tracks/")).json()["tracks"][0]["id"]
        paths = ["/tracks/", f"/tracks/{track_id}", f"/tracks/{track_id}/likes", f"/tracks/{track_id}/comments",
                 "/activity/", "/search/?q=gone", "/search/?q=featuring", "/albums/", "/stats",
                 "/xrpc/fm.plyr.feed.getLatest", f"/xrpc/fm.plyr.track.getTrack?uri={world.t1}",
                 f"/xrpc/fm.plyr.track.getComments?uri={world.t1}", "/xrpc/fm.plyr.feed.getActivity",
                 "/xrpc/fm.plyr.search.searchArtists?q=gone", "/xrpc/fm.plyr.search.searchTracks?q=gone",
                 "/xrpc/fm.plyr.search.searchLists?q=gone"]
        bodies = {p: (await http.get(p)).text for p in paths}
        events = (await http.get("/xrpc/fm.plyr.sync.getEvents", params={"hydrate": "true"})).json()["events"]
        bodies["hydrated"] = json.dumps([e["hydrated"] for e in events if "hydrated" in e])
        track = (await http.get(f"/tracks/{track_id}")).json()
    for path, body in bodies.items():
        assert GONE_HANDLE not in body and "from beyond" not in body and "gone mix" not in body, (path, body)
    assert [f["did"] for f in track["features"]] == [FAN]
    assert track["like_count"] == 1 and track["comment_count"] == 0


async def test_the_actor_itself_is_404_actor_not_found_in_every_namespace(db_url: str, world: GoneWorld) -> None:
    world.account(GONE, False, "deleted")
    await world.flush()
    assert {"fm.plyr.play.getHistory", "fm.plyr.play.getNowPlaying", "fm.plyr.actor.getProfile"} <= set(
        ACTOR_METHODS)
    async with client(db_url) as http:
        for nsid in ACTOR_METHODS:
            for actor in (GONE, GONE_HANDLE, NOBODY):
                r = await http.get(f"/xrpc/{nsid}", params={"actor": actor})
                assert r.status_code == 404 and r.json()["error"] == "ActorNotFound", (nsid, actor, r.text)
        for path in (f"/artists/{GONE}", f"/artists/by-handle/{GONE_HANDLE}", f"/artists/{GONE}/analytics",
                     f"/albums/{GONE_HANDLE}", f"/users/{GONE_HANDLE}/likes", f"/lists/playlists/by-artist/{GONE}",
                     f"/tracks/?artist_did={GONE}"):
            r = await http.get(path)
            assert r.status_code == 404, (path, r.text)
        # the same answer as for an account we never knew
        known = (await http.get("/xrpc/fm.plyr.actor.getProfile", params={"actor": GONE})).json()
        unknown = (await http.get("/xrpc/fm.plyr.actor.getProfile", params={"actor": NOBODY})).json()
        assert known == {**unknown, "message": unknown["message"].replace(NOBODY, GONE)}
