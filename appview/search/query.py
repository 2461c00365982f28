"""Search over tracks, artists, albums and playlists: candidates from indexes, plyr.fm's tiered ranking.

Normalisation (both sides): `public.search_norm` = unaccent, lower case, curly quotes straightened,
apostrophes dropped; the columns hold it STORED (migration 0003) and the query is normalised by the
same SQL function, so "Café", "cafe", "don’t" and "dont" meet.

Candidates (each branch served by one GIN index, never a scan):
- substring: `norm LIKE '%q%'` (trigram GIN; for 1–2 character queries only the prefix `q%`);
- full text: `tsv @@ websearch_to_tsquery(q)` and a typeahead form `'w1':* & 'w2':*` (tsvector GIN);
- fuzzy (typos): `q <% norm`, pg_trgm word similarity ≥ FUZZY_THRESHOLD (set per transaction).

Ranking (plyr.fm `_lexical_relevance`): exact 5.0 > prefix 3.0 + word_similarity > substring
1.5 + word_similarity > word_similarity; ties by newest first. The fuzzy branch is the expensive one
and can only produce scores ≤ 1.0, so it runs only when the lexical branches found fewer than the
requested page of ≥ 1.5 scores; the merged result is identical to running everything at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from psycopg import AsyncConnection
from psycopg.rows import class_row

from appview.search import policy

MIN_FUZZY = 3  # trigram LIKE '%q%' and `<%` need a trigram in q to use the index at all
STRONG = 1.5  # lowest score the fuzzy branch cannot reach (substring tier)
# pg_trgm's default 0.6 misses one-letter typos in mid-length words ("lendarman" ~ "lenderman" = 0.54).
FUZZY_THRESHOLD = 0.5
_WORD = re.compile(r"[^\W_]+")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Query:
    norm: str
    indexable_websearch: bool  # websearch_to_tsquery(norm) has a positive, indexable part
    viewer: str | None = None

    @property
    def short(self) -> bool:
        return len(self.norm) < MIN_FUZZY

    def params(self, k: int) -> dict[str, Any]:
        esc = self.norm.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        words = _WORD.findall(self.norm)
        # Quoted lexemes: words are letters/digits only, so nothing in them is tsquery syntax.
        pq = " & ".join(f"'{w}':*" if len(w) > 1 else f"'{w}'" for w in words) or None
        return {"qn": self.norm, "prefix": esc + "%", "sub": "%" + esc + "%", "pq": pq, "k": k,
                "viewer": self.viewer}


async def normalise(conn: AsyncConnection, q: str, viewer: str | None = None) -> Query:
    # The threshold is set for this transaction only (the request's), where the `<%` scans run.
    cur = await conn.execute(
        "SELECT n, querytree(websearch_to_tsquery('simple', n)) NOT IN ('T', ''),"
        " set_config('pg_trgm.word_similarity_threshold', %s, true)"
        " FROM (SELECT btrim(public.search_norm(%s)) AS n) s", (str(FUZZY_THRESHOLD), q))
    row = await cur.fetchone()
    norm, indexable, _ = row if row else ("", False, None)
    return Query(norm=norm or "", indexable_websearch=bool(indexable), viewer=viewer)


# ---- SQL fragments over one normalised column ---------------------------------------------


def relevance(col: str) -> str:
    ws = f"word_similarity(%(qn)s, {col})::float8"
    return (f"CASE WHEN {col} = %(qn)s THEN 5.0::float8 WHEN {col} LIKE %(prefix)s THEN 3.0 + {ws}"
            f" WHEN {col} LIKE %(sub)s THEN 1.5 + {ws} ELSE {ws} END")


def lexical(q: Query, col: str, tsv: str | None = None) -> str:
    parts = [f"{col} LIKE %(prefix)s" if q.short else f"{col} LIKE %(sub)s"]
    if tsv:
        parts.append(f"{tsv} @@ to_tsquery('simple', %(pq)s)")
        if q.indexable_websearch:
            parts.append(f"{tsv} @@ websearch_to_tsquery('simple', %(qn)s)")
    return "(" + " OR ".join(parts) + ")"


def fuzzy(col: str) -> str:
    return f"(%(qn)s <%% {col})"


def display_name(did_expr: str) -> str:
    """The artist display-name rule shared with the other views: the `artist` string of the
    account's most recent track (plyr.fm writes its display name there); callers fall back to the
    handle. Kept in this one function so it can follow the read side's sort key."""
    return f"(SELECT d.artist FROM track d WHERE d.did = {did_expr} ORDER BY d.id DESC LIMIT 1)"


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


_TRACKS = """
SELECT s.*, a.handle, {display} AS display_name, p.avatar FROM (
  SELECT t.id, t.uri, t.cid, t.did, t.title, t.artist, t.album, t.image_url, t.created_at, t.indexed_at,
         {rel} AS relevance
  FROM track t WHERE {match} AND {visible}
  ORDER BY relevance DESC, t.id DESC LIMIT %(k)s
) s LEFT JOIN actor a ON a.did = s.did LEFT JOIN artist_profile p ON p.did = s.did
ORDER BY s.relevance DESC, s.id DESC
"""

_ARTISTS = """
WITH cand AS (
  SELECT a.did FROM actor a WHERE {handle_match}
  UNION SELECT t.did FROM track t WHERE {artist_match}
)
SELECT c.did, a.handle, n.artist AS display_name, p.avatar,
       greatest({rel_handle}, {rel_name}) AS relevance
FROM cand c
JOIN actor a ON a.did = c.did AND a.active AND a.handle IS NOT NULL
CROSS JOIN LATERAL (SELECT d.artist, public.search_norm(d.artist) AS norm FROM track d
                    WHERE d.did = c.did ORDER BY d.id DESC LIMIT 1) n
LEFT JOIN artist_profile p ON p.did = c.did
WHERE ({handle_check} OR {name_check}) AND {hook}
ORDER BY relevance DESC, c.did DESC LIMIT %(k)s
"""

_LISTS = """
SELECT s.*, a.handle, {display} AS display_name, p.avatar FROM (
  SELECT l.id, l.uri, l.cid, l.did, l.name, l.list_type, l.item_count, l.created_at, l.indexed_at,
         {rel} AS relevance
  FROM list l WHERE l.list_type = ANY(%(list_types)s) AND l.name IS NOT NULL
    AND (l.list_type <> 'album' OR l.item_count > 0) AND {match} AND {visible}
  ORDER BY relevance DESC, l.id DESC LIMIT %(k)s
) s LEFT JOIN actor a ON a.did = s.did LEFT JOIN artist_profile p ON p.did = s.did
ORDER BY s.relevance DESC, s.id DESC
"""


def _tracks_sql(match: str) -> str:
    return _TRACKS.format(display=display_name("s.did"), rel=relevance("t.search_title"), match=match,
                          visible=policy.track_listable("t"))


def _artists_sql(q: Query, fuzzy_phase: bool) -> str:
    def m(col: str) -> str:
        return fuzzy(col) if fuzzy_phase else lexical(q, col)

    return _ARTISTS.format(
        handle_match=m("a.search_handle"), artist_match=m("t.search_artist"),
        rel_handle=relevance("a.search_handle"), rel_name=relevance("n.norm"),
        handle_check=m("a.search_handle"), name_check=m("n.norm"),
        hook=policy.operator_labels_visible("c.did", "c.did"),
    )


def _lists_sql(match: str) -> str:
    return _LISTS.format(display=display_name("s.did"), rel=relevance("l.search_name"), match=match,
                         visible=policy.list_listable("l"))


async def _fetch(conn: AsyncConnection, sql: str, params: dict[str, Any], row: type[R]) -> list[R]:
    async with conn.cursor(row_factory=class_row(row)) as cur:
        await cur.execute(sql, params)  # type: ignore[arg-type]  # built from fixed fragments only
        return await cur.fetchall()


async def _two_phase(
    conn: AsyncConnection, q: Query, k: int, row: type[R], sql_for: Callable[[bool], str],
    key: Callable[[R], Any], extra: dict[str, Any] | None = None,
) -> list[R]:
    params = q.params(k) | (extra or {})
    hits = await _fetch(conn, sql_for(False), params, row)
    if q.short or sum(1 for h in hits if h.relevance >= STRONG) >= k:  # type: ignore[attr-defined]
        return hits
    seen = {key(h) for h in hits}
    more = [h for h in await _fetch(conn, sql_for(True), params, row) if key(h) not in seen]
    if not more:
        return hits
    merged = hits + more
    merged.sort(key=lambda h: (h.relevance, key(h)), reverse=True)  # type: ignore[attr-defined]
    return merged[:k]


async def search_tracks(conn: AsyncConnection, q: Query, k: int) -> list[TrackHit]:
    def sql(fuzzy_phase: bool) -> str:
        col = "t.search_title"
        return _tracks_sql(fuzzy(col) if fuzzy_phase else lexical(q, col, "t.search_tsv"))

    return await _two_phase(conn, q, k, TrackHit, sql, lambda h: h.id)


async def search_artists(conn: AsyncConnection, q: Query, k: int) -> list[ArtistHit]:
    return await _two_phase(conn, q, k, ArtistHit, lambda f: _artists_sql(q, f), lambda h: h.did)


ListKind = Literal["album", "playlist"]


async def search_lists(conn: AsyncConnection, q: Query, k: int, kinds: Sequence[ListKind]) -> list[ListHit]:
    def sql(fuzzy_phase: bool) -> str:
        col = "l.search_name"
        return _lists_sql(fuzzy(col) if fuzzy_phase else lexical(q, col, "l.search_tsv"))

    return await _two_phase(conn, q, k, ListHit, sql, lambda h: h.id, {"list_types": list(kinds)})
