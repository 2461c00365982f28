"""Hostile queries, named one by one (test_search_api.py fuzzes the same surfaces with hypothesis): each is a 200
with a well-formed (maybe empty) page or a 400 naming `q`, never a 500, and the data is untouched afterwards."""

from __future__ import annotations

from tests.appview.search_kit import World, client, did, titles

A = did("hostile")
SURFACES = ("/search/", "/xrpc/fm.plyr.search.searchTracks", "/xrpc/fm.plyr.search.searchArtists",
            "/xrpc/fm.plyr.search.searchLists")
HOSTILE = [
    # empty, blank, too short or too long after trimming (400 naming q)
    "", " ", "\t\n", "a", "x" * 101, "x" * 60_000, "lendermann " * 10,
    # only punctuation / operators of LIKE, tsquery, websearch and regex syntax
    "!!", "...", "???", "—–", "%%", "__", "\\\\", "&|!():*", "<->", "'':*", '""', "-", "- -", "or or", "* *",
    "^$", ".*", "[a-z]+", "(((", ")))",
    # SQL-ish
    "'; DROP TABLE track; --", "1' OR '1'='1", "\" OR \"\"=\"", "$$; SELECT 1; $$", "E'\\x41'", "%' --",
    "lendermann'); DELETE FROM track; --", "/* */", "unaccent(", "pg_sleep(10)",
    # unicode: emoji, RTL, combining marks, zero-width, CJK, the last code point, ligatures, fullwidth
    "🎵🎶", "שלום עולם", "مرحبا", "e\u0301e\u0301", "\u200b\u200b", "\u200bab", "音楽", "\U0010ffff\U0010ffff",
    "ﬁnal ﬂow", "ｌｅｎｄｅｒｍａｎ", "Ⅻ", "İstanbul", "ß" * 60, "a\u0000b",
]


async def test_hostile_queries_are_200_or_400_and_change_nothing(db_url: str) -> None:
    w = World(db_url)
    w.actor(A, "hostile.test")
    w.track(A, "you don’t know the shape i’m in (mj lenderman cover)", artist="hostile")
    await w.flush()
    bad = []
    async with client(db_url) as c:
        for q in HOSTILE:
            for path in SURFACES:
                r = await c.get(path, params={"q": q})
                body = r.json() if r.status_code in (200, 400) else {}
                text = body.get("detail") or body.get("message") or "" if r.status_code == 400 else ""
                if (r.status_code not in (200, 400) or (r.status_code == 400 and "q" not in text)
                        or (r.status_code == 200 and path == "/search/" and set(body) != {"results", "counts"})):
                    bad.append((path, q[:40], r.status_code, r.text[:200]))
        assert await titles(c, "lendermann") == ["you don’t know the shape i’m in (mj lenderman cover)"]
    assert not bad, bad


async def test_invalid_utf8_in_the_query_string_is_not_a_500(db_url: str) -> None:
    async with client(db_url) as c:
        for raw in (b"q=%ff%fe", b"q=%c3", b"q=ab%00cd", b"q=%ed%a0%80ab"):
            r = await c.get("/search/?" + raw.decode())
            assert r.status_code in (200, 400), (raw, r.status_code, r.text[:300])
