"""`subject_count`: likes (distinct likers) and comments per subject, from active accounts only.

A derived projection: whenever a batch touches a like or comment, or an account's status changes,
the affected subjects are recounted from the projected rows in the same transaction. Recounting
(rather than incrementing) keeps it a pure function of the other projections, so a rebuild and
every interleaving of the same writes agree.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from ingester.projection import counters
from ingester.projection.base import Put
from ingester.projection.writes import TextArray

COUNTED = {"fm.plyr.like": '"like"', "fm.plyr.comment": "comment"}

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


async def subjects_of_uris(cur: psycopg.AsyncCursor, collection: str, uris: Iterable[str]) -> set[str]:
    """Subjects the current rows of `uris` point at (before they are replaced or deleted)."""
    table = COUNTED.get(collection)
    keys = list(uris)
    if table is None or not keys:
        return set()
    await cur.execute(f"SELECT subject_uri FROM {table} WHERE uri = ANY(%s)", (TextArray(keys),))
    return {r[0] for r in await cur.fetchall()}


async def subjects_of_did(cur: psycopg.AsyncCursor, did: str) -> set[str]:
    await cur.execute('SELECT subject_uri FROM "like" WHERE did = %s UNION SELECT subject_uri FROM comment '
                      "WHERE did = %s", (did, did))
    return {r[0] for r in await cur.fetchall()}


async def recount(cur: psycopg.AsyncCursor, subjects: set[str]) -> None:
    if subjects:
        await cur.execute(_RECOUNT, {"subjects": TextArray(sorted(subjects))})
        counters.mark_tracks(cur, subjects, plays=False)


class SubjectCounts:
    """Flush hook: recount the subjects a flush's likes and comments pointed at, before and after."""

    async def before(self, cur: psycopg.AsyncCursor, changes: dict[str, tuple[list[Put], list[str]]]) -> set[str]:
        touched: set[str] = set()
        for collection, (puts, deleted) in changes.items():
            if collection in COUNTED:
                touched |= await subjects_of_uris(cur, collection, deleted + [p.event.uri for p in puts])
                touched |= {p.event.record["subject"]["uri"] for p in puts if p.event.record}
        return touched

    async def after(self, cur: psycopg.AsyncCursor, changes: dict[str, tuple[list[Put], list[str]]],
                    token: set[str]) -> None:
        await recount(cur, token)

    async def recompute(self, cur: psycopg.AsyncCursor) -> None:
        """Every subject at once (a rebuild's bulk load): the same numbers `recount` gives subject by subject."""
        await cur.execute("DELETE FROM subject_count")
        await cur.execute(_RECOMPUTE)
