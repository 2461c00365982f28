"""The search SQL, built from fixed fragments (no user text is ever spliced in; it travels as params).

Candidates come from capped, index-served branches, so no query visits more than a few hundred
rows however common its words are (a bare "love" matches a fifth of all titles). Three phases of
rising cost, each behind a one-time filter in the same statement (a later one runs only when the
earlier ones left the page short, and can only add lower tiers):
- head:      exact `norm = q` (newest first, k rows: the top tier is complete) and prefix
             (`~>=~ q AND ~<~ successor(q)` on a `text_pattern_ops` btree for titles and artist
             strings, which stops after CAP rows; `LIKE 'q%'` on the trigram GIN elsewhere);
- lexical:   `norm LIKE '%q%'` (trigram GIN; skipped for 1–2 character queries, which have no
             trigram to look up) or the tsvector matching the websearch / typeahead tsquery;
- fuzzy:     `q <% norm` (trigram GIN, word similarity), short queries only; for a phrase also
             `q <<% norm` (strict word similarity, a higher threshold: the close matches). Each branch reads
             at most CAP rows in index order, not best first, so a phrase with one misspelt word, whose
             other words alone pass the loose threshold in hundreds of titles, still has its title among
             the strict branch's few (a second GIN scan, so single words go without it).
Then every candidate is ranked (plyr.fm's tiers) and the page cut. Whenever a branch has at most
CAP matches the result is exactly plyr.fm's order; beyond that the exact tier is still complete and
the rest is ranked within the CAP matches each branch read.

Plans: statements are prepared and run with generic plans (no per-request planning, ~1 ms each);
the request's transaction turns sequential and index-only scans off, because with a LIMIT and
guessed row counts the planner otherwise walks a whole table or btree with a filter (seen: 28 ms and
110 ms instead of ~1 ms). Unordered branches are `MATERIALIZED` CTEs ("fenced"), planned as if every
match were wanted (a GIN bitmap) and read lazily, so they still stop after the cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from appview.search import policy

CAP = 50
SCAN_PER_KEY = 8  # rows read per wanted key in a `repeated` source (an artist has ~20 tracks)
Phase = Literal["head", "lexical", "fuzzy"]
# Typo matching: none, one word (the loose branch), or a phrase (a strict branch first, see `candidates`).
Fuzzy = Literal["off", "word", "phrase"]


@dataclass(frozen=True, slots=True)
class Source:
    """One searched column: `table alias`, the key joined back on, the normalised column, its tsvector,
    the visibility predicate over `alias`, and the column ordering the exact tier (newest first)."""

    table: str
    alias: str
    key: str
    col: str
    tsv: str | None
    visible: str
    order: str
    prefix_btree: bool = False  # a `text_pattern_ops` btree serves `~>=~ q AND ~<~ q'` (early stop)
    # Many rows per key (an artist's tracks): each branch reads at most %(scan)s rows, then keeps
    # %(cap)s distinct keys; the exact tier is not ordered (keys come in index order).
    repeated: bool = False

    def _branch(self, where: str, limit: str, order: bool = False, fenced: bool = True) -> str:
        """`fenced`: the scan sits in a MATERIALIZED CTE, planned as if every match were wanted (a
        GIN bitmap, not a filtered walk of some btree betting on an early LIMIT; with generic plans
        the row estimate is a guess) but still read lazily, so it stops after `limit` rows."""
        a = self.alias
        by = f" ORDER BY {a}.{self.order} DESC" if order else ""
        scan = f"SELECT {a}.{self.key} FROM {self.table} {a} WHERE {where} AND {self.visible}{by}"
        rows = "%(scan)s" if self.repeated else limit
        inner = f"WITH f AS MATERIALIZED ({scan}) SELECT * FROM f LIMIT {rows}" if fenced else f"{scan} LIMIT {rows}"
        if self.repeated:
            return f"(SELECT DISTINCT x.{self.key} FROM ({inner}) x LIMIT %(cap)s)"
        return f"({inner})"

    def candidates(self, phase: Phase, short: bool, websearch: bool, strict: bool = False) -> str | None:
        col = f"{self.alias}.{self.col}"
        if phase == "fuzzy":
            loose = self._branch(f"%(qn)s <%% {col}", "%(cap)s")
            return self._branch(f"%(qn)s <<%% {col}", "%(cap)s") + "\n  UNION " + loose if strict else loose
        if phase == "head":
            # In byte order, q <= s < successor(q) is exactly "s starts with q"; spelt this way only
            # the btree can serve it, which stops after CAP rows (a GIN bitmap builds all of them).
            prefix = f"{col} ~>=~ %(qn)s AND {col} ~<~ %(upper)s" if self.prefix_btree else f"{col} LIKE %(prefix)s"
            # The exact tier is complete for the page: newest k, however many share the text.
            return (self._branch(f"{col} = %(qn)s", "%(k)s", order=not self.repeated, fenced=False)
                    + "\n  UNION " + self._branch(prefix, "%(cap)s", fenced=not self.prefix_btree))
        lex = [] if short else [f"{col} LIKE %(sub)s"]
        if self.tsv:
            lex.append(f"{self.alias}.{self.tsv} @@ to_tsquery('simple', %(pq)s)")
            if websearch:
                lex.append(f"{self.alias}.{self.tsv} @@ websearch_to_tsquery('simple', %(qn)s)")
        return self._branch("(" + " OR ".join(lex) + ")", "%(cap)s") if lex else None


def relevance(col: str) -> str:
    """plyr.fm's `_lexical_relevance`: exact 5, prefix 3 + ws, substring 1.5 + ws, else ws."""
    ws = f"word_similarity(%(qn)s, {col})::float8"
    return (f"CASE WHEN {col} = %(qn)s THEN 5.0::float8 WHEN {col} LIKE %(prefix)s THEN 3.0 + {ws}"
            f" WHEN {col} LIKE %(sub)s THEN 1.5 + {ws} ELSE {ws} END")


def matches(col: str, phase: Phase, short: bool) -> str:
    """Re-check of a computed (unindexed) value, e.g. an artist's current display name."""
    if phase == "fuzzy":
        return f"(%(qn)s <%% {col})"
    return f"({col} LIKE %(prefix)s)" if short or phase == "head" else f"({col} LIKE %(sub)s)"


# The artist display-name rule shared with the other views: the `artist` string of the account's
# most recent track (plyr.fm writes its display name there); callers fall back to the handle.
# "Most recent" in one place, so it can follow the read side's sort key (track alias `d`).
LATEST_TRACK = "d.sort_at DESC, d.id DESC"


def display_name(did_expr: str) -> str:
    return f"(SELECT d.artist FROM track d WHERE d.did = {did_expr} ORDER BY {LATEST_TRACK} LIMIT 1)"


TRACKS = Source("track", "t", "id", "search_title", "search_tsv", policy.track_listable("t"), "id",
                prefix_btree=True)
LISTS = Source("list", "l", "id", "search_name", "search_tsv",
               "l.list_type = ANY(%(list_types)s) AND (l.list_type <> 'album' OR l.item_count > 0) AND "
               + policy.list_listable("l"), "id")
HANDLES = Source("actor", "a", "did", "search_handle", None, "a.active", "did")
ARTIST_NAMES = Source("track", "t", "did", "search_artist", None, "TRUE", "id", prefix_btree=True, repeated=True)

PHASES: tuple[Phase, ...] = ("head", "lexical", "fuzzy")
# A phase runs only when the ones before it left fewer than k results at or above its ceiling: no
# substring/full-text row can beat a prefix match (3.0 + ws), no fuzzy row a substring (1.5 + ws).
CEILING = {"lexical": 3.0, "fuzzy": 1.5}


def _phased(cands: dict[Phase, str | None], scored: Callable[[str, Phase], str], key_type: str) -> str:
    """One statement for all phases: each later phase sits behind a one-time filter (an InitPlan
    over the earlier phases' scores), so the server skips it without another round trip."""
    ctes: list[str] = []
    done: list[str] = []
    for phase in PHASES:
        cand = cands[phase]
        body = scored(cand, phase) if cand else f"SELECT NULL::{key_type} AS key, NULL::float8 AS relevance WHERE FALSE"
        if done:
            earlier = " UNION ALL ".join(f"SELECT relevance FROM {d}" for d in done)
            # The fuzzy phase of a phrase runs only when nothing at all matched before it (see `_params` in
            # appview.search.query): its floor and count are parameters.
            floor, wanted = ("%(fuzzy_floor)s", "%(fuzzy_k)s") if phase == "fuzzy" else (CEILING[phase], "%(k)s")
            body = (f"SELECT * FROM ({body}) s WHERE (SELECT count(*) FROM ({earlier}) e"
                    f" WHERE e.relevance >= {floor}) < {wanted}")
        ctes.append(f"{phase} AS MATERIALIZED ({body})")
        done.append(phase)
    union = " UNION ALL ".join(f"SELECT key, relevance FROM {d}" for d in done)
    return (f"WITH {', '.join(ctes)},\nranked AS (SELECT key, max(relevance) AS relevance FROM ({union}) u"
            f" GROUP BY key ORDER BY relevance DESC, key DESC LIMIT %(k)s)")


def _cands(source: Source, short: bool, websearch: bool, fuzzy: Fuzzy) -> dict[Phase, str | None]:
    return {p: None if p == "fuzzy" and fuzzy == "off" else source.candidates(p, short, websearch, fuzzy == "phrase")
            for p in PHASES}


def tracks(short: bool, websearch: bool, fuzzy: Fuzzy) -> str:
    def scored(cand: str, phase: Phase) -> str:
        return (f"SELECT t.id AS key, {relevance('t.search_title')} AS relevance"
                f" FROM ({cand}) c JOIN track t ON t.id = c.id")

    return _phased(_cands(TRACKS, short, websearch, fuzzy), scored, "bigint") + f"""
SELECT t.id, t.uri, t.cid, t.did, t.title, t.artist, t.album, t.image_url, t.created_at, t.indexed_at,
       r.relevance, a.handle, {display_name("t.did")} AS display_name, p.avatar
FROM ranked r JOIN track t ON t.id = r.key
LEFT JOIN actor a ON a.did = t.did LEFT JOIN artist_profile p ON p.did = t.did
ORDER BY r.relevance DESC, r.key DESC"""


def lists(short: bool, websearch: bool, fuzzy: Fuzzy) -> str:
    def scored(cand: str, phase: Phase) -> str:
        return (f"SELECT l.id AS key, {relevance('l.search_name')} AS relevance"
                f" FROM ({cand}) c JOIN list l ON l.id = c.id")

    return _phased(_cands(LISTS, short, websearch, fuzzy), scored, "bigint") + f"""
SELECT l.id, l.uri, l.cid, l.did, l.name, l.list_type, l.item_count, l.created_at, l.indexed_at,
       r.relevance, a.handle, {display_name("l.did")} AS display_name, p.avatar
FROM ranked r JOIN list l ON l.id = r.key
LEFT JOIN actor a ON a.did = l.did LEFT JOIN artist_profile p ON p.did = l.did
ORDER BY r.relevance DESC, r.key DESC"""


def artists(short: bool, websearch: bool, fuzzy: Fuzzy) -> str:
    """Artists = active accounts with ≥ 1 track, matched on handle or on a track's artist string, then
    ranked (and re-checked) on the handle and the current display name."""
    def scored(cand: str, phase: Phase) -> str:
        return f"""SELECT c.did AS key, greatest({relevance("a.search_handle")}, {relevance("n.norm")}) AS relevance
  FROM ({cand}) c
  JOIN actor a ON a.did = c.did AND a.active AND a.handle IS NOT NULL
  CROSS JOIN LATERAL (SELECT d.search_artist AS norm FROM track d
                      WHERE d.did = c.did ORDER BY {LATEST_TRACK} LIMIT 1) n
  WHERE ({matches("a.search_handle", phase, short)} OR {matches("n.norm", phase, short)})
    AND {policy.operator_labels_visible("c.did", "c.did")}"""

    cands: dict[Phase, str | None] = {}
    for phase in PHASES:
        branches = [b for b in (HANDLES.candidates(phase, short, websearch, fuzzy == "phrase"),
                                ARTIST_NAMES.candidates(phase, short, websearch, fuzzy == "phrase")) if b]
        cands[phase] = None if not branches or (phase == "fuzzy" and fuzzy == "off") else " UNION ".join(branches)
    return _phased(cands, scored, "text") + f"""
SELECT r.key AS did, a.handle, {display_name("r.key")} AS display_name, p.avatar, r.relevance
FROM ranked r JOIN actor a ON a.did = r.key LEFT JOIN artist_profile p ON p.did = r.key
ORDER BY r.relevance DESC, r.key DESC"""
