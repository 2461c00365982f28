"""Artist profiles and per-artist / platform statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from appview.query.moderation import author_visible, track_visible

# Aggregates must stay sane whatever valid records say: a record may claim any int64 duration, so each
# track contributes at most MAX_TRACK_DURATION_S to a sum, and every total leaves as an int64 at most.
MAX_TRACK_DURATION_S = 24 * 3600
INT64_MAX = 2**63 - 1


def bounded_duration(alias: str) -> str:
    """A track's duration as counted in sums: null/negative → 0, capped at MAX_TRACK_DURATION_S."""
    return f"least(greatest(coalesce({alias}.duration, 0), 0), {MAX_TRACK_DURATION_S})"


def int64(value: Any) -> int:
    """A SQL count or sum (numeric for sums of bigints) as a non-negative int64."""
    return min(max(int(value or 0), 0), INT64_MAX)


@dataclass(frozen=True, slots=True)
class Profile:
    bio: str | None
    avatar: str | None
    created_at: Any
    updated_at: Any


async def profile(conn: AsyncConnection, did: str) -> Profile:
    """The fm.plyr.actor.profile record; without one, dates come from the artist's first and last
    track (or when we first saw the account)."""
    sql = """SELECT p.bio, p.avatar, coalesce(p.created_at, min(t.created_at), min(a.indexed)::text),
                    coalesce(p.updated_at, p.created_at, max(t.created_at), min(a.indexed)::text)
             FROM (SELECT %(did)s AS did) d
             LEFT JOIN artist_profile p ON p.did = d.did
             LEFT JOIN track t ON t.did = d.did
             LEFT JOIN LATERAL (SELECT min(received_at) AS indexed FROM repo_event r WHERE r.did = d.did) a ON true
             GROUP BY p.bio, p.avatar, p.created_at, p.updated_at"""
    row = await (await conn.execute(sql, {"did": did})).fetchone()
    assert row is not None
    return Profile(*row)


@dataclass(frozen=True, slots=True)
class ArtistStats:
    tracks: int
    duration_s: int
    likes: int
    comments: int
    top_liked: tuple[int, str, int] | None  # id, title, distinct likers
    plays: int = 0
    top_played: tuple[int, str, int] | None = None  # id, title, plays
    rank: int | None = None  # 1..10 among artists by plays, else None


async def stats(conn: AsyncConnection, did: str) -> ArtistStats:
    sql = f"""
        WITH t AS (SELECT t.id, t.uri, t.title, t.duration FROM track t WHERE t.did = %(did)s AND {track_visible('t')}),
             lk AS (SELECT t.id, t.title, c.like_count AS n FROM t JOIN subject_count c ON c.subject_uri = t.uri
                    WHERE c.like_count > 0),
             pl AS (SELECT t.id, t.title, count(*) AS n FROM t JOIN play p ON p.track_uri = t.uri
                    WHERE {author_visible('p.did')} GROUP BY t.id, t.title),
             ranked AS (SELECT t.did, count(*) AS n FROM play p JOIN track t ON t.uri = p.track_uri
                        WHERE {author_visible('p.did')} AND {track_visible('t')}
                        GROUP BY t.did ORDER BY n DESC, t.did LIMIT 10)
        SELECT (SELECT count(*) FROM t), (SELECT coalesce(sum({bounded_duration('t')}), 0) FROM t),
               (SELECT coalesce(sum(n), 0) FROM lk),
               (SELECT coalesce(sum(c.comment_count), 0) FROM t JOIN subject_count c ON c.subject_uri = t.uri),
               (SELECT row(id, title, n) FROM lk ORDER BY n DESC, id DESC LIMIT 1),
               (SELECT coalesce(sum(n), 0) FROM pl),
               (SELECT row(id, title, n) FROM pl ORDER BY n DESC, id DESC LIMIT 1),
               (SELECT r FROM (SELECT did, row_number() OVER (ORDER BY n DESC, did) AS r FROM ranked) x
                 WHERE x.did = %(did)s)"""
    row = await (await conn.execute(sql, {"did": did})).fetchone()
    assert row is not None
    top, played = row[4], row[6]
    return ArtistStats(int64(row[0]), int64(row[1]), int64(row[2]), int64(row[3]),
                       (int(top[0]), str(top[1]), int64(top[2])) if top else None, int64(row[5]),
                       (int(played[0]), str(played[1]), int64(played[2])) if played else None,
                       int(row[7]) if row[7] is not None else None)


@dataclass(frozen=True, slots=True)
class PlatformCounts:
    tracks: int
    artists: int
    duration_s: int
    plays: int = 0


async def platform(conn: AsyncConnection) -> PlatformCounts:
    sql = f"""SELECT count(*), count(DISTINCT t.did), coalesce(sum({bounded_duration('t')}), 0),
                     coalesce(sum((SELECT count(*) FROM play p WHERE p.track_uri = t.uri
                                   AND {author_visible('p.did')})), 0)
              FROM track t WHERE {track_visible('t')}"""
    row = await (await conn.execute(sql)).fetchone()
    assert row is not None
    return PlatformCounts(int64(row[0]), int64(row[1]), int64(row[2]), int64(row[3]))
