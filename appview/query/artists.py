"""Artist profiles and per-artist / platform statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from appview.query import counters
from appview.query.counters import PlatformCounts

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
    """From the counters (appview/query/counters.py): no play, like or comment row is counted here."""
    c = await counters.artist(conn, did)
    return ArtistStats(c.tracks, c.duration_s, c.likes, c.comments, c.top_liked, c.plays, c.top_played, c.rank)


async def platform(conn: AsyncConnection) -> PlatformCounts:
    return await counters.platform(conn)
