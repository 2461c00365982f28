"""The search surfaces: XRPC outputs against their lexicons, pagination, moderation, bad parameters."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.appview.search_kit import World, client, did, validate_output

A = did("alpha")
B = did("bravo")
GONE = did("gone")


async def xrpc(c: httpx.AsyncClient, nsid: str, **params: Any) -> dict[str, Any]:
    r = await c.get(f"/xrpc/{nsid}", params=params)
    assert r.status_code == 200, (nsid, r.text)
    body = r.json()
    assert validate_output(nsid, body) is None, (nsid, validate_output(nsid, body), body)
    return body


async def _world(db_url: str) -> World:
    w = World(db_url)
    w.actor(A, "alpha.test")
    w.actor(B, "bravo.test")
    w.actor(GONE, "gone.test")
    tracks = [w.track(A, f"ocean song {i}", artist="Alpha Waves", imageUrl="https://images.plyr.fm/images/x.jpg")
              for i in range(5)]
    w.track(B, "ocean floor", artist="Bravo")
    w.track(B, "ocean explicit", artist="Bravo", labels={"$type": "com.atproto.label.defs#selfLabels",
                                                         "values": [{"val": "porn"}]})
    w.track(B, "ocean removed", artist="Bravo", labels={"$type": "com.atproto.label.defs#selfLabels",
                                                        "values": [{"val": "!takedown"}]})
    w.track(GONE, "ocean ghost", artist="Gone")
    w.plist(A, "Ocean Album", tracks, "album")
    w.plist(A, "ocean empty album", [], "album")
    w.plist(B, "ocean mix", tracks[:2], "playlist")
    w.plist(B, "ocean likes", tracks[:1], "liked")
    w.plist(GONE, "ocean ghost mix", tracks[:1], "playlist")
    w.account(GONE, False, "deactivated")
    await w.flush()
    return w


async def test_xrpc_search_tracks_paginates_and_matches_lexicon(db_url: str) -> None:
    await _world(db_url)
    async with client(db_url) as c:
        first = await xrpc(c, "fm.plyr.search.searchTracks", q="ocean", limit=4)
        assert len(first["tracks"]) == 4 and first["cursor"] == "4"
        rest = await xrpc(c, "fm.plyr.search.searchTracks", q="ocean", limit=4, cursor=first["cursor"])
        assert "cursor" not in rest
        got = [t["title"] for t in first["tracks"] + rest["tracks"]]
        assert len(got) == len(set(got)) == 6  # 5 of alpha + ocean floor: no repeats across pages
        assert not {"ocean explicit", "ocean removed", "ocean ghost"} & set(got)
        t = first["tracks"][0]
        assert t["artist"]["handle"] in ("alpha.test", "bravo.test") and t["indexedAt"].endswith("Z")


async def test_xrpc_search_artists_and_lists(db_url: str) -> None:
    await _world(db_url)
    async with client(db_url) as c:
        artists = await xrpc(c, "fm.plyr.search.searchArtists", q="alpha waves")
        assert [a["handle"] for a in artists["artists"]] == ["alpha.test"]
        assert artists["artists"][0]["displayName"] == "Alpha Waves"
        assert [a["did"] for a in (await xrpc(c, "fm.plyr.search.searchArtists", q="bravo.te"))["artists"]] == [B]
        assert (await xrpc(c, "fm.plyr.search.searchArtists", q="gone"))["artists"] == []
        lists = await xrpc(c, "fm.plyr.search.searchLists", q="ocean")
        assert sorted(x["name"] for x in lists["lists"]) == ["Ocean Album", "ocean mix"]
        albums = await xrpc(c, "fm.plyr.search.searchLists", q="ocean", listType="album")
        assert [(x["name"], x["trackCount"]) for x in albums["lists"]] == [("Ocean Album", 5)]


async def test_rest_moderation_and_owner_exemption(db_url: str) -> None:
    await _world(db_url)
    async with client(db_url) as c:
        body = (await c.get("/search/", params={"q": "ocean"})).json()
        names = {x.get("title") or x.get("name") for x in body["results"]}
        assert {"ocean floor", "Ocean Album", "ocean mix"} <= names
        assert not {"ocean explicit", "ocean removed", "ocean ghost", "ocean ghost mix", "ocean empty album",
                    "ocean likes"} & names
    from appview.search import query as sq
    from core.db.connect import connect

    async with await connect(db_url) as conn:  # the adult-label exemption for the track's owner
        hits = await sq.search_tracks(conn, await sq.normalise(conn, "ocean explicit", B), 5)
        assert "ocean explicit" in [h.title for h in hits]
        hits = await sq.search_tracks(conn, await sq.normalise(conn, "ocean explicit", A), 5)
        assert "ocean explicit" not in [h.title for h in hits]


BAD_REST = [
    ({}, "q: required"), ({"q": "a"}, "q: must be 2 to 100"), ({"q": " a "}, "q: must be 2 to 100"),
    ({"q": "x" * 101}, "q: must be 2 to 100"), ({"q": "ab\x00c"}, "NUL"),
    ({"q": "ok", "limit": "0"}, "limit"), ({"q": "ok", "limit": "51"}, "limit"),
    ({"q": "ok", "limit": "ten"}, "limit"), ({"q": "ok", "type": "tracks,songs"}, "type: unknown 'songs'"),
]


async def test_rest_bad_params_are_400_with_a_message(db_url: str) -> None:
    async with client(db_url) as c:
        for params, message in BAD_REST:
            r = await c.get("/search/", params=params)
            assert r.status_code == 400 and message in r.json()["detail"], (params, r.text)
        r = await c.get("/xrpc/fm.plyr.search.searchTracks", params={"q": "ok", "cursor": "-1"})
        assert r.status_code == 400 and r.json()["error"] == "InvalidRequest" and "cursor" in r.json()["message"]
        r = await c.get("/xrpc/fm.plyr.search.searchLists", params={"q": "ok", "listType": "liked"})
        assert r.status_code == 400 and "listType" in r.json()["message"]
        r = await c.get("/xrpc/fm.plyr.search.searchArtists")
        assert r.status_code == 400 and r.json()["message"].startswith("q: ")
        empty = (await c.get("/search/", params={"q": "’’"})).json()  # nothing left after normalising
        assert empty == {"results": [], "counts": {"tracks": 0, "artists": 0, "albums": 0, "tags": 0,
                                                   "playlists": 0}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=st.one_of(
    st.text(min_size=0, max_size=120),
    st.text(alphabet="&|!():*'\\%_\"-<> \x00éü’", min_size=0, max_size=30),
    st.sampled_from(["x" * 5000, "\x00\x00", "a" * 100, "'" * 50, ":*", "!!", "a:*b", "\\x00", "( )"]),
), limit=st.one_of(st.none(), st.text(max_size=6), st.integers(-5, 60).map(str)))
async def test_arbitrary_input_never_500(db_url: str, q: str, limit: str | None) -> None:
    async with client(db_url) as c:
        params = {"q": q} | ({"limit": limit} if limit is not None else {})
        for path in ("/search/", "/xrpc/fm.plyr.search.searchTracks", "/xrpc/fm.plyr.search.searchArtists",
                     "/xrpc/fm.plyr.search.searchLists"):
            r = await c.get(path, params=params)
            assert r.status_code in (200, 400), (path, params, r.status_code, r.text)


async def test_openapi_documents_the_search_routes(db_url: str) -> None:
    async with client(db_url) as c:
        spec = (await c.get("/openapi.json")).json()
        assert {"/search/", "/xrpc/fm.plyr.search.searchTracks", "/xrpc/fm.plyr.search.searchArtists",
                "/xrpc/fm.plyr.search.searchLists"} <= set(spec["paths"])
        assert (await c.get("/docs")).status_code == 200
