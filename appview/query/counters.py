"""Reading the counter projections (core/db/counters.py): platform totals and per-track plays without
counting rows.

The counters already leave out what the log decides (inactive accounts, tracks self-labelled hidden);
what operator labels hide is judged here, at read time (their expiry is), by subtracting the few labelled
subjects found through the `label_hide` partial index: tracks labelled on their URI or their account, and
plays of listeners labelled on their account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from appview.query.moderation import EFFECTIVE, track_visible
from core.labels import HIDE_EVERYWHERE

# The predicate of the `label_hide` partial index, spelled as it is, so the planner uses it.
_HIDE_IN = "lab_.val IN (" + ", ".join(f"'{v}'" for v in HIDE_EVERYWHERE) + ")"
HIDDEN_SUBJECTS = f"SELECT lab_.uri FROM label lab_ WHERE {_HIDE_IN} AND {EFFECTIVE}"
_ACTIVE = "NOT EXISTS (SELECT 1 FROM actor ma WHERE ma.did = {} AND NOT ma.active)"


def track_plays(track: str = "t", counter: str | None = None) -> str:
    """Plays of the track row `track` as every view counts them: its counter (`counter`, an alias of its
    joined `track_counter` row, else looked up), less the plays of listeners an operator label hides (found
    through `label_hide`, so nearly free while there are none)."""
    plays = (f"{counter}.plays" if counter
             else f"(SELECT tc_.plays FROM track_counter tc_ WHERE tc_.uri = {track}.uri)")
    return (f"(coalesce({plays}, 0) - (SELECT count(*) FROM play hp_ WHERE hp_.track_uri = {track}.uri"
            f" AND hp_.did IN ({HIDDEN_SUBJECTS}) AND {_ACTIVE.format('hp_.did')}))")


@dataclass(frozen=True, slots=True)
class PlatformCounts:
    tracks: int
    artists: int
    duration_s: int
    plays: int = 0


_PLATFORM = f"""
WITH hl AS MATERIALIZED (SELECT DISTINCT uri FROM ({HIDDEN_SUBJECTS}) s_),
-- counted tracks an operator label hides (on the track, or on its account)
ht AS MATERIALIZED (
    SELECT t.uri, t.did, least(greatest(coalesce(t.duration, 0), 0), 86400) AS duration_s, tc.plays
    FROM (SELECT t.id FROM hl JOIN track t ON t.uri = hl.uri
          UNION SELECT t.id FROM hl JOIN track t ON t.did = hl.uri) k
    JOIN track t ON t.id = k.id JOIN track_counter tc ON tc.uri = t.uri
    JOIN artist_counter ac ON ac.did = t.did AND ac.counted
    WHERE NOT (t.self_labels ?| ARRAY[{", ".join(f"'{v}'" for v in HIDE_EVERYWHERE)}]::text[])
),
-- plays of label-hidden (but active) listeners on counted tracks that stay visible
hp AS (
    SELECT count(*) AS n FROM hl JOIN play p ON p.did = hl.uri JOIN track_counter tc ON tc.uri = p.track_uri
    JOIN artist_counter ac ON ac.did = tc.did AND ac.counted
    JOIN track t ON t.uri = tc.uri
    WHERE {_ACTIVE.format('p.did')}
      AND NOT EXISTS (SELECT 1 FROM ht WHERE ht.uri = tc.uri)
      AND NOT (t.self_labels ?| ARRAY[{", ".join(f"'{v}'" for v in HIDE_EVERYWHERE)}]::text[])
),
-- artists all of whose counted tracks are hidden
ha AS (
    SELECT count(*) AS n FROM (SELECT did, count(*) AS k FROM ht GROUP BY did) h
    JOIN artist_counter ac ON ac.did = h.did WHERE h.k = ac.tracks
)
SELECT coalesce(g.tracks, 0) - (SELECT count(*) FROM ht),
       coalesce(g.artists, 0) - (SELECT n FROM ha),
       coalesce(g.duration_s, 0) - (SELECT coalesce(sum(duration_s), 0) FROM ht),
       coalesce(g.plays, 0) - (SELECT coalesce(sum(plays), 0) FROM ht) - (SELECT n FROM hp)
FROM (SELECT 1) one LEFT JOIN global_counter g ON g.id = 1
"""


def _int64(value: Any) -> int:
    return min(max(int(value or 0), 0), 2**63 - 1)


async def platform(conn: AsyncConnection) -> PlatformCounts:
    """Visible tracks, their artists, duration and plays: the global counter less what labels hide now."""
    row = await (await conn.execute(_PLATFORM)).fetchone()
    assert row is not None
    return PlatformCounts(_int64(row[0]), _int64(row[1]), _int64(row[2]), _int64(row[3]))


@dataclass(frozen=True, slots=True)
class ArtistCounts:
    tracks: int
    duration_s: int
    likes: int
    comments: int
    plays: int
    top_liked: tuple[int, str, int] | None  # id, title, distinct likers
    top_played: tuple[int, str, int] | None  # id, title, plays
    rank: int | None  # 1..10 among artists by plays, else None


_ARTIST = f"""
WITH t AS MATERIALIZED (
    SELECT t.id, t.title, least(greatest(coalesce(t.duration, 0), 0), 86400) AS duration_s,
           coalesce(tc.likes, 0) AS likes, coalesce(tc.comments, 0) AS comments, {track_plays('t', 'tc')} AS plays
    FROM track t LEFT JOIN track_counter tc ON tc.uri = t.uri
    WHERE t.did = %(did)s AND {track_visible('t')}
),
-- the artists ranked by the counters (an artist hidden by a label is not ranked)
ranked AS (
    SELECT ac.did, row_number() OVER (ORDER BY ac.plays DESC, ac.did) AS r FROM (
        SELECT did, plays FROM artist_counter WHERE counted AND plays > 0
           AND did NOT IN ({HIDDEN_SUBJECTS}) ORDER BY plays DESC, did LIMIT 10) ac
)
SELECT (SELECT count(*) FROM t), (SELECT coalesce(sum(duration_s), 0) FROM t),
       (SELECT coalesce(sum(likes), 0) FROM t), (SELECT coalesce(sum(comments), 0) FROM t),
       (SELECT coalesce(sum(plays), 0) FROM t),
       (SELECT row(id, title, likes) FROM t WHERE likes > 0 ORDER BY likes DESC, id DESC LIMIT 1),
       (SELECT row(id, title, plays) FROM t WHERE plays > 0 ORDER BY plays DESC, id DESC LIMIT 1),
       (SELECT r FROM ranked WHERE did = %(did)s)
"""


async def artist(conn: AsyncConnection, did: str) -> ArtistCounts:
    row = await (await conn.execute(_ARTIST, {"did": did})).fetchone()
    assert row is not None
    top, played = row[5], row[6]
    return ArtistCounts(_int64(row[0]), _int64(row[1]), _int64(row[2]), _int64(row[3]), _int64(row[4]),
                        (int(top[0]), str(top[1]), _int64(top[2])) if top else None,
                        (int(played[0]), str(played[1]), _int64(played[2])) if played else None,
                        int(row[7]) if row[7] is not None else None)
