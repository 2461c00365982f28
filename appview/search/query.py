"""Search over tracks, artists, albums and playlists: candidates from indexes, plyr.fm's tiered ranking.

Normalisation (both sides): `public.search_norm` = unaccent, lower case, curly quotes straightened,
apostrophes dropped; the columns hold it STORED (migration 0003) and the query is normalised by the
same SQL function, so "Café", "cafe", "don’t" and "dont" meet.

Candidates come from capped, index-served branches (see `appview.search.sql`).

Ranking (plyr.fm `_lexical_relevance`): exact 5.0 > prefix 3.0 + word_similarity > substring
1.5 + word_similarity > word_similarity; ties by newest first. Candidates are fetched in phases of
rising cost (exact+prefix, substring+full text, fuzzy); a later phase can only add lower tiers, so it
runs only when the earlier ones left the page short, and the merge equals running them all at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import class_row

from appview.search import sql

MIN_FUZZY = 3  # trigram LIKE '%q%' and `<%` need a trigram in q to use the index at all
# Typo matching stops at phrases this long: past them the full text matches word by word, and their many
# (often common) trigrams make the trigram index walk long posting lists. Six words still take a typo in a
# whole song title ("smels like teen spirit"), which plyr.fm's whole-string similarity finds.
FUZZY_MAX_WORDS, FUZZY_MAX_CHARS = 6, 48
_WORD = re.compile(r"[^\W_]+")


def fuzzy_threshold(words: int) -> float:
    """The word similarity a typo must reach. One word: 0.4, or a swap of two letters in the middle
    ("setpember" ~ "september" = 0.43) and a one-letter slip in a mid-length word ("lendarman" ~
    "lenderman" = 0.54) are lost; two or three: 0.5 ("midnite city" ~ "midnight city" = 0.59, "clare de
    lune" = 0.65); more words carry more trigrams, which dilute one typo less: 0.6 (a higher threshold
    also lets the GIN scan skip through common trigrams' posting lists). Each tested against plyr.fm's
    own recall in tests/appview/test_search_typos.py."""
    return 0.4 if words <= 1 else 0.5 if words <= 3 else 0.6


STRICT_ABOVE = 0.1  # the strict branch's threshold, above `fuzzy_threshold` (see appview.search.sql)


@dataclass(frozen=True, slots=True)
class Query:
    norm: str
    indexable_websearch: bool  # websearch_to_tsquery(norm) has a positive, indexable part
    viewer: str | None = None

    @property
    def short(self) -> bool:
        return len(self.norm) < MIN_FUZZY

    @property
    def fuzzy(self) -> bool:
        return (not self.short and len(self.norm) <= FUZZY_MAX_CHARS
                and len(_WORD.findall(self.norm)) <= FUZZY_MAX_WORDS)

    @property
    def fuzzy_mode(self) -> sql.Fuzzy:
        return "off" if not self.fuzzy else "phrase" if len(_WORD.findall(self.norm)) > 1 else "word"

    def params(self, k: int) -> dict[str, Any]:
        esc = self.norm.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        words = _WORD.findall(self.norm)
        # Quoted lexemes: words are letters/digits only, so nothing in them is tsquery syntax.
        pq = " & ".join(f"'{w}':*" if len(w) > 1 else f"'{w}'" for w in words) or None
        return {"qn": self.norm, "prefix": esc + "%", "sub": "%" + esc + "%", "pq": pq, "k": k,
                "upper": _successor(self.norm), "viewer": self.viewer}


def _successor(s: str) -> str | None:
    """The least string above every string starting with `s` in byte (= code point) order; None when
    `s` is all U+10FFFF (the btree prefix branch then finds nothing; the substring branch still does)."""
    while s:
        c = ord(s[-1]) + 1
        if c <= 0x10FFFF:
            return s[:-1] + chr(0xE000 if 0xD800 <= c <= 0xDFFF else c)
        s = s[:-1]
    return None


async def normalise(conn: AsyncConnection, q: str, viewer: str | None = None) -> Query:
    """Normalise `q` and configure the current transaction for the search statements that follow in
    it (callers hold one transaction, e.g. `conn.transaction()`, so autocommit cannot drop them)."""
    # These settings hold for this transaction only (the request's), where the search queries run:
    # - the fuzzy threshold;
    # - generic plans for the prepared search statements: planning them costs ~1 ms each, more
    #   than running them, and their shape no longer depends on the parameters (see sql.py);
    # - no sequential or index-only scans: every candidate branch is capped, and trigram/tsquery
    #   row estimates are guesses, so the planner otherwise bets on walking a whole table (or a
    #   btree) with a filter until the cap, and reads all of it when matches are rarer than guessed
    #   (28 ms and 110 ms instead of ~1 ms at 100k tracks).
    threshold = fuzzy_threshold(len(_WORD.findall(q.replace("'", "").replace("’", ""))))
    cur = await conn.execute(
        "SELECT n, querytree(websearch_to_tsquery('simple', n)) NOT IN ('T', ''),"
        " set_config('pg_trgm.word_similarity_threshold', %s, true),"
        " set_config('pg_trgm.strict_word_similarity_threshold', %s, true),"
        " set_config('plan_cache_mode', 'force_generic_plan', true),"
        " set_config('enable_seqscan', 'off', true), set_config('enable_indexonlyscan', 'off', true)"
        " FROM (SELECT btrim(public.search_norm(%s)) AS n) s",
        (str(threshold), str(min(0.9, threshold + STRICT_ABOVE)), q))
    row = await cur.fetchone()
    norm, indexable = (row[0], row[1]) if row else ("", False)
    return Query(norm=norm or "", indexable_websearch=bool(indexable), viewer=viewer)


# ---- rows ---------------------------------------------------------------------------------


@dataclass(slots=True)
class TrackHit:
    id: int
    uri: str
    cid: str
    did: str
    title: str
    artist: str
    album: str | None
    image_url: str | None
    created_at: str
    indexed_at: datetime
    relevance: float
    handle: str | None
    display_name: str | None
    avatar: str | None


@dataclass(slots=True)
class ArtistHit:
    did: str
    handle: str
    display_name: str
    avatar: str | None
    relevance: float


@dataclass(slots=True)
class ListHit:
    id: int
    uri: str
    cid: str
    did: str
    name: str
    list_type: str
    item_count: int
    created_at: str
    indexed_at: datetime
    relevance: float
    handle: str | None
    display_name: str | None
    avatar: str | None


Statement = tuple[str, dict[str, Any], type]


def track_statement(q: Query, k: int) -> Statement:
    return sql.tracks(q.short, q.indexable_websearch, q.fuzzy_mode), _params(q, k), TrackHit


def artist_statement(q: Query, k: int) -> Statement:
    return sql.artists(q.short, q.indexable_websearch, q.fuzzy_mode), _params(q, k), ArtistHit


ListKind = Literal["album", "playlist"]


def list_statement(q: Query, k: int, kinds: Sequence[ListKind]) -> Statement:
    return sql.lists(q.short, q.indexable_websearch, q.fuzzy_mode), _params(q, k) | {"list_types": list(kinds)}, ListHit


def _params(q: Query, k: int) -> dict[str, Any]:
    cap = max(sql.CAP, k)
    # A phrase is looked up for typos only when nothing matched it literally (any tier, any order of its words):
    # a phrase with one misspelt word matches nothing (full text wants every word), one that did match is what
    # was meant, and the two fuzzy scans of a phrase's many trigrams cost more than all the rest of the search.
    # A word: when fewer than k rows rank above every fuzzy one (1.5, `sql.CEILING`).
    phrase = q.fuzzy_mode == "phrase"
    return q.params(k) | {"cap": cap, "scan": sql.SCAN_PER_KEY * cap, "fuzzy_k": 1 if phrase else k,
                          "fuzzy_floor": 0.0 if phrase else sql.CEILING["fuzzy"]}


async def run(conn: AsyncConnection, statements: Sequence[Statement]) -> list[list[Any]]:
    """All statements in one pipeline: one round trip whatever the number of types searched."""
    cursors: list[AsyncCursor[Any]] = []
    async with conn.pipeline():
        for text, params, row in statements:
            cur: AsyncCursor[Any] = conn.cursor(row_factory=class_row(row))
            await cur.execute(text, params, prepare=True)
            cursors.append(cur)
    out = []
    for cur in cursors:
        out.append(await cur.fetchall())
        await cur.close()
    return out


async def search_tracks(conn: AsyncConnection, q: Query, k: int) -> list[TrackHit]:
    return (await run(conn, [track_statement(q, k)]))[0]


async def search_artists(conn: AsyncConnection, q: Query, k: int) -> list[ArtistHit]:
    return (await run(conn, [artist_statement(q, k)]))[0]


async def search_lists(conn: AsyncConnection, q: Query, k: int, kinds: Sequence[ListKind]) -> list[ListHit]:
    return (await run(conn, [list_statement(q, k, kinds)]))[0]
