# ruff: noqa: RUF001 — curly apostrophes in fixtures are the point
"""plyr.fm's ranking behaviour (backend/tests/api/test_search_ranking.py), ported, plus accents,
full text, typeahead and ordering between types; all through the real app on a real Postgres."""

from __future__ import annotations

import pytest

from tests.appview.search_kit import World, client, did, titles

A = did("ranking")
TARGET = "you don’t know the shape i’m in (mj lenderman cover)"
DECOYS = ["I don't sled, I sleigh!", "12 Can't You See", "You can't escape"]


async def _world(db_url: str, track_titles: list[str]) -> World:
    w = World(db_url)
    w.actor(A, "ranking.test")
    for t in track_titles:
        w.track(A, t, artist="ranking")
    await w.flush()
    return w


async def test_prefix_match_outranks_trigram_fuzz(db_url: str) -> None:
    await _world(db_url, [TARGET, *DECOYS])
    async with client(db_url) as c:
        assert (await titles(c, "you don't kn"))[0] == TARGET


@pytest.mark.parametrize("q", ["you don't kn", "you don’t kn", "you dont kn", "YOU DON’T KN"])
async def test_quote_style_does_not_fracture_matching(db_url: str, q: str) -> None:
    await _world(db_url, [TARGET, *DECOYS])
    async with client(db_url) as c:
        got = await titles(c, q)
        assert got and got[0] == TARGET, (q, got)


async def test_exact_match_outranks_a_longer_prefix_continuation(db_url: str) -> None:
    await _world(db_url, ["for your information", "for you (demo)", "for you"])
    async with client(db_url) as c:
        r = await c.get("/search/", params={"q": "for you", "type": "tracks"})
        results = r.json()["results"]
        assert [x["title"] for x in results][0] == "for you"
        assert results[0]["relevance"] == 5.0
        assert all(3.0 < x["relevance"] <= 4.0 for x in results[1:]), results


async def test_fuzzy_matching_still_recalls_typos(db_url: str) -> None:
    await _world(db_url, [TARGET, *DECOYS])
    async with client(db_url) as c:
        assert TARGET in await titles(c, "lendermann")
        assert TARGET in await titles(c, "lendarman")  # substitution
        assert TARGET in await titles(c, "lendrman")  # deletion


async def test_tiers_exact_prefix_substring_fuzzy(db_url: str) -> None:
    await _world(db_url, ["midnight", "midnight train", "after midnight", "midnite"])
    async with client(db_url) as c:
        r = await c.get("/search/", params={"q": "midnight", "type": "tracks"})
        got = [(x["title"], x["relevance"]) for x in r.json()["results"]]
        assert [t for t, _ in got] == ["midnight", "midnight train", "after midnight", "midnite"], got
        assert got[0][1] == 5.0 and 3.0 < got[1][1] <= 4.0 and 1.5 < got[2][1] <= 2.5 and got[3][1] < 1.0


@pytest.mark.parametrize(("stored", "q"), [
    ("Café del Mar", "cafe del"), ("Cafe del Mar", "café del"), ("Björk Guðmundsdóttir", "bjork"),
    ("Señorita", "SENORITA"), ("naïve melody", "naive"), ("Über alles", "uber"),
])
async def test_accent_insensitive_both_ways(db_url: str, stored: str, q: str) -> None:
    await _world(db_url, [stored, "something else entirely"])
    async with client(db_url) as c:
        assert (await titles(c, q)) == [stored]


async def test_multiword_full_text_any_order_and_typeahead(db_url: str) -> None:
    await _world(db_url, ["late night drive", "night shift", "drive home late", "morning"])
    async with client(db_url) as c:
        assert (await titles(c, "late night"))[0] == "late night drive"
        assert "drive home late" in await titles(c, "drive late")  # every word, any order (full text)
        assert set(await titles(c, "lat nig")) >= {"late night drive"}  # each word a prefix
        assert await titles(c, "mo") == ["morning"]  # 2 characters: prefix only
        assert (await titles(c, '"night drive"'))[0] == "late night drive"  # websearch phrase


async def test_like_and_tsquery_syntax_is_literal(db_url: str) -> None:
    await _world(db_url, ["100% pure", "a_b c", "rock & roll", "what?!"])
    async with client(db_url) as c:
        assert await titles(c, "100%") == ["100% pure"]
        assert await titles(c, "a_b") == ["a_b c"]
        assert (await titles(c, "rock & roll"))[0] == "rock & roll"
        assert await titles(c, "what?!") == ["what?!"]
        for q in ["&|!():*", "'':*", "\\\\", "%%", "__", "-foo", "or", '""']:
            r = await c.get("/search/", params={"q": q})
            assert r.status_code == 200, (q, r.text)


async def test_results_across_types_sorted_by_relevance(db_url: str) -> None:
    w = await _world(db_url, ["late night drive"])
    t = w.track(A, "late night", artist="ranking")
    w.plist(A, "late night ambient", [t], "playlist")
    w.plist(A, "the late nights", [t], "album")
    b = w.actor(did("latenite"), "latenight.bsky.social")
    w.track(b, "unrelated", artist="late nite")
    await w.flush()
    async with client(db_url) as c:
        body = (await c.get("/search/", params={"q": "late night"})).json()
        kinds = [(x["type"], x["relevance"]) for x in body["results"]]
        assert body["counts"] == {"tracks": 2, "artists": 1, "albums": 1, "tags": 0, "playlists": 1}
        assert kinds[0] == ("track", 5.0)
        rel = [r for _, r in kinds]
        assert rel == sorted(rel, reverse=True)
        # equal relevance keeps plyr's type order: tracks, artists, albums, tags, playlists
        ties = [k for k, r in kinds if r == kinds[1][1]]
        assert ties == ["track", "playlist"], kinds
        artist = next(x for x in body["results"] if x["type"] == "artist")
        assert artist == {"type": "artist", "did": b, "handle": "latenight.bsky.social",
                          "display_name": "late nite", "avatar_url": None, "relevance": artist["relevance"]}
        only = (await c.get("/search/", params={"q": "late night", "type": "albums,playlists"})).json()
        assert [x["type"] for x in only["results"]] == ["playlist", "album"]
        assert only["counts"] == {"tracks": 0, "artists": 0, "albums": 1, "tags": 0, "playlists": 1}
        album = next(x for x in only["results"] if x["type"] == "album")
        assert album["slug"] == "the-late-nights" and album["artist_display_name"] == "ranking"


async def test_exact_tier_is_complete_and_newest_first_however_common(db_url: str) -> None:
    w = World(db_url)
    w.actor(A, "ranking.test")
    for i in range(70):  # more of each than any candidate branch reads
        w.track(A, "my love", artist="ranking")
        w.track(A, "love", artist="ranking")
        w.track(A, f"love song {i}", artist="ranking")
    await w.flush()
    async with client(db_url) as c:
        r = await c.get("/search/", params={"q": "love", "type": "tracks", "limit": 50})
        results = r.json()["results"]
        assert [x["title"] for x in results] == ["love"] * 50
        ids = [x["id"] for x in results]
        assert ids == sorted(ids, reverse=True)
        r = await c.get("/search/", params={"q": "love s", "type": "tracks", "limit": 50})
        assert all(x["title"].startswith("love song") for x in r.json()["results"])


async def test_pages_never_repeat_or_skip(db_url: str) -> None:
    w = World(db_url)
    w.actor(A, "ranking.test")
    for i in range(30):
        w.track(A, f"{'blue ' * (i % 3)}river {i}", artist="ranking")
    await w.flush()
    async with client(db_url) as c:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params = {"q": "river", "limit": 7} | ({"cursor": cursor} if cursor else {})
            body = (await c.get("/xrpc/fm.plyr.search.searchTracks", params=params)).json()
            seen += [t["uri"] for t in body["tracks"]]
            cursor = body.get("cursor")
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 30
