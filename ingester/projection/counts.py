"""`subject_count`: likes (distinct likers) and comments per subject, from active accounts only.

A derived projection, kept in the same transaction as the rows it counts: a flush that touches likes or
comments moves each touched subject by exactly what the flush changed (`SubjectCounts`); an account's status
change recounts the subjects of its likes and comments (`recount`); a rebuild counts everything once
(`recompute`). All three give the count from scratch, so it stays a pure function of the other projections
and a rebuild and every interleaving of the same writes agree (tests/property/test_counters.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ingester.projection import counters
from ingester.projection.base import Put
from ingester.projection.writes import TextArray

_RECOUNT = """
WITH s AS (SELECT DISTINCT unnest(%(subjects)s::text[]) AS uri),
c AS (
    SELECT s.uri,
        (SELECT count(DISTINCT l.did) FROM "like" l WHERE l.subject_uri = s.uri
           AND NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = l.did AND NOT a.active)) AS likes,
        (SELECT count(*) FROM comment m WHERE m.subject_uri = s.uri
           AND NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = m.did AND NOT a.active)) AS comments
    FROM s
), gone AS (
    DELETE FROM subject_count WHERE subject_uri IN (SELECT uri FROM c WHERE likes = 0 AND comments = 0)
)
INSERT INTO subject_count (subject_uri, like_count, comment_count)
SELECT uri, likes, comments FROM c WHERE likes > 0 OR comments > 0
ON CONFLICT (subject_uri) DO UPDATE SET like_count = EXCLUDED.like_count, comment_count = EXCLUDED.comment_count
"""

# The pairs and comments a flush may change, as they stand before it (see `SubjectCounts`).
_BEFORE = """
WITH p AS (
    SELECT did, subject_uri AS subject FROM "like" WHERE uri = ANY(%(like_uris)s::text[])
    UNION
    SELECT * FROM unnest(%(dids)s::text[], %(subjects)s::text[])
)
SELECT 'l', p.did, p.subject, EXISTS (SELECT 1 FROM "like" l WHERE l.subject_uri = p.subject AND l.did = p.did) FROM p
UNION ALL
SELECT 'c', did, subject_uri, NULL FROM comment WHERE uri = ANY(%(comment_uris)s::text[])
"""

# Each touched subject moves by what the flush changed, counting active accounts only; a subject left with
# nothing loses its row (as `_RECOUNT` leaves it).
_MOVE = """
WITH likes AS (
    SELECT p.subject, p.did,
           (EXISTS (SELECT 1 FROM "like" l WHERE l.subject_uri = p.subject AND l.did = p.did))::int - p.liked AS d
    FROM unnest(%(like_dids)s::text[], %(like_subjects)s::text[], %(liked)s::int[]) AS p(did, subject, liked)
), comments AS (
    SELECT subject_uri AS subject, did, 1 AS d FROM comment WHERE uri = ANY(%(comment_uris)s::text[])
    UNION ALL
    SELECT subject, did, -1 FROM unnest(%(comment_subjects)s::text[], %(comment_dids)s::text[]) AS o(subject, did)
), d AS (
    SELECT subject, sum(dl) AS dl, sum(dc) AS dc FROM (
        SELECT subject, did, d AS dl, 0 AS dc FROM likes WHERE d <> 0
        UNION ALL
        SELECT subject, did, 0, d FROM comments
    ) x
    WHERE NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = x.did AND NOT a.active)
    GROUP BY subject HAVING sum(dl) <> 0 OR sum(dc) <> 0
), n AS (
    SELECT d.subject, coalesce(s.like_count, 0) + d.dl AS likes, coalesce(s.comment_count, 0) + d.dc AS comments
    FROM d LEFT JOIN subject_count s ON s.subject_uri = d.subject
), gone AS (
    DELETE FROM subject_count WHERE subject_uri IN (SELECT subject FROM n WHERE likes = 0 AND comments = 0)
)
INSERT INTO subject_count (subject_uri, like_count, comment_count)
SELECT subject, likes, comments FROM n WHERE likes <> 0 OR comments <> 0
ON CONFLICT (subject_uri) DO UPDATE SET like_count = EXCLUDED.like_count, comment_count = EXCLUDED.comment_count
"""

_RECOMPUTE = """
INSERT INTO subject_count (subject_uri, like_count, comment_count)
SELECT uri, sum(likes), sum(comments) FROM (
    SELECT l.subject_uri AS uri, count(DISTINCT l.did) AS likes, 0 AS comments FROM "like" l
    WHERE NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = l.did AND NOT a.active) GROUP BY l.subject_uri
    UNION ALL
    SELECT m.subject_uri, 0, count(*) FROM comment m
    WHERE NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = m.did AND NOT a.active) GROUP BY m.subject_uri
) c GROUP BY uri HAVING sum(likes) > 0 OR sum(comments) > 0
"""


async def subjects_of_did(cur: psycopg.AsyncCursor, did: str) -> set[str]:
    await cur.execute('SELECT subject_uri FROM "like" WHERE did = %s UNION SELECT subject_uri FROM comment '
                      "WHERE did = %s", (did, did))
    return {r[0] for r in await cur.fetchall()}


async def recount(cur: psycopg.AsyncCursor, subjects: set[str]) -> None:
    if subjects:
        await cur.execute(_RECOUNT, {"subjects": TextArray(sorted(subjects))})
        counters.mark_tracks(cur, subjects, plays=False)


@dataclass(frozen=True, slots=True)
class _Before:
    """What a flush's likes and comments counted before it: each (liker, subject) pair it may change, with
    whether that liker had liked that subject; and the comments it may replace or delete, where they pointed."""

    like_dids: TextArray
    like_subjects: TextArray
    liked: list[int]
    comment_uris: TextArray
    comment_subjects: TextArray
    comment_dids: TextArray
    subjects: set[str]  # every subject whose counts the flush may move


class SubjectCounts:
    """Flush hook: move the counts of the subjects a flush's likes and comments pointed at, before and after,
    by what the flush changed — not by counting a subject's likes again (a step on a subject with 100k likes
    would count 100k rows). Exact, never a blind increment:

    - likes count distinct likers, so the hook reads, before and after, whether each (liker, subject) pair the
      flush touches has a like, and moves the subject by the difference;
    - comments count rows, so it reads the touched comments' subjects before and after.

    Only active accounts count (as in `recount`): account events are applied after the flush that holds the
    records before them, so a liker's status is the same before and after."""

    async def before(self, cur: psycopg.AsyncCursor, changes: dict[str, tuple[list[Put], list[str]]]) -> _Before | None:
        likes, comments = changes.get("fm.plyr.like"), changes.get("fm.plyr.comment")
        if not likes and not comments:
            return None
        like_puts, like_deleted = likes or ([], [])
        comment_puts, comment_deleted = comments or ([], [])
        # The pairs the flush may make: (author, subject) of each put. The pairs it may undo are read below: the
        # rows of the likes it replaces or deletes (a fresh put has none).
        new_pairs = {(p.event.did, p.event.record["subject"]["uri"]) for p in like_puts if p.event.record}
        like_uris = TextArray(like_deleted + [p.event.uri for p in like_puts if not p.fresh])
        comment_uris = TextArray(comment_deleted + [p.event.uri for p in comment_puts])
        await cur.execute(_BEFORE, {"like_uris": like_uris, "dids": TextArray(d for d, _ in new_pairs),
                                    "subjects": TextArray(s for _, s in new_pairs), "comment_uris": comment_uris})
        pairs: dict[tuple[str, str], int] = {}
        old_comments: list[tuple[str, str]] = []
        for kind, did, subject, liked in await cur.fetchall():
            if kind == "l":
                pairs[(did, subject)] = int(liked)
            else:
                old_comments.append((subject, did))
        subjects = {s for _, s in pairs} | {s for s, _ in old_comments}
        subjects |= {p.event.record["subject"]["uri"] for p in comment_puts if p.event.record}
        return _Before(TextArray(d for d, _ in pairs), TextArray(s for _, s in pairs), list(pairs.values()),
                       comment_uris, TextArray(s for s, _ in old_comments), TextArray(d for _, d in old_comments),
                       subjects)

    async def after(self, cur: psycopg.AsyncCursor, changes: dict[str, tuple[list[Put], list[str]]],
                    token: _Before | None) -> None:
        if token is None or not token.subjects:
            return
        await cur.execute(_MOVE, {"like_dids": token.like_dids, "like_subjects": token.like_subjects,
                                  "liked": token.liked, "comment_uris": token.comment_uris,
                                  "comment_subjects": token.comment_subjects, "comment_dids": token.comment_dids})
        counters.mark_tracks(cur, token.subjects, plays=False)

    async def recompute(self, cur: psycopg.AsyncCursor) -> None:
        """Every subject at once (a rebuild's bulk load): the same numbers `recount` gives subject by subject."""
        await cur.execute("DELETE FROM subject_count")
        await cur.execute(_RECOMPUTE)
