"""The activity feed: likes, new tracks, comments, new playlists and album releases, newest first.

Keyset on (sort_at, uri), so events sharing an instant are neither skipped nor repeated. Cursor wire
form: `<ISO-8601>::<at-uri>`; a bare timestamp (plyr.fm's form) pages strictly before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from appview.query import cursor as cursors
from appview.query.moderation import author_visible, record_visible, track_listable

_BRANCHES = f"""
    SELECT 'like' AS kind, l.sort_at, l.uri, l.did, t.id AS track_id, NULL::text AS text, NULL::bigint AS list_id
      FROM "like" l JOIN track t ON t.uri = l.subject_uri
     WHERE {author_visible('l.did')} AND {track_listable('t')} {{k_l}}
    UNION ALL
    SELECT 'track', t.sort_at, t.uri, t.did, t.id, NULL, NULL FROM track t WHERE {track_listable('t')} {{k_t}}
    UNION ALL
    SELECT 'comment', c.sort_at, c.uri, c.did, t.id, c.text, NULL
      FROM comment c JOIN track t ON t.uri = c.subject_uri
     WHERE {record_visible('c')} AND {track_listable('t')} {{k_c}}
    UNION ALL
    SELECT CASE li.list_type WHEN 'album' THEN 'album_release' ELSE 'playlist_create' END, li.sort_at, li.uri,
           li.did, NULL, NULL, li.id
      FROM "list" li WHERE li.list_type IN ('album', 'playlist') AND {record_visible('li')} {{k_li}}
"""


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    sort_at: datetime
    uri: str
    did: str
    track_id: int | None
    text: str | None
    list_id: int | None


def _decode(raw: str | None) -> tuple[datetime, str] | None:
    if not raw:
        return None
    at, _, uri = cursors.split(raw)
    return at, uri


def encode(e: Event) -> str:
    return f"{e.sort_at.isoformat()}::{e.uri}"


async def feed(conn: AsyncConnection, viewer: str | None, cursor: str | None, limit: int,
               ) -> tuple[list[Event], str | None]:
    c = _decode(cursor)
    keys = {k: (f"AND ({a}.sort_at, {a}.uri) < (%(c_at)s, %(c_uri)s)" if c else "")
            for k, a in (("k_l", "l"), ("k_t", "t"), ("k_c", "c"), ("k_li", "li"))}
    # Each branch is ordered and limited on its own index before the merge.
    parts = _BRANCHES.format(**keys).split("UNION ALL")
    branches = [f"({b.strip()} ORDER BY 2 DESC, 3 DESC LIMIT %(n)s)" for b in parts]
    sql = " UNION ALL ".join(branches) + " ORDER BY 2 DESC, 3 DESC LIMIT %(n)s"
    params: dict[str, Any] = {"viewer": viewer, "n": limit + 1}
    if c:
        params |= {"c_at": c[0], "c_uri": c[1]}
    rows = [Event(*r) for r in await (await conn.execute(sql, params)).fetchall()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode(rows[-1]) if more and rows else None)


async def histogram(conn: AsyncConnection, days: int) -> list[tuple[date, int]]:
    """Events per UTC day over the last `days` days (today included), zero-filled."""
    today = datetime.now(UTC).date()
    start = today - timedelta(days=days - 1)
    sql = f"""
        SELECT d::date, coalesce(n, 0) FROM generate_series(%(start)s::date, %(today)s::date, '1 day') d
        LEFT JOIN (
            SELECT (sort_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM (
                SELECT l.sort_at FROM "like" l WHERE l.sort_at >= %(start)s AND {author_visible('l.did')}
                UNION ALL SELECT t.sort_at FROM track t WHERE t.sort_at >= %(start)s AND {author_visible('t.did')}
                UNION ALL SELECT c.sort_at FROM comment c WHERE c.sort_at >= %(start)s AND {author_visible('c.did')}
                UNION ALL SELECT li.sort_at FROM "list" li WHERE li.sort_at >= %(start)s
                    AND li.list_type IN ('album', 'playlist') AND {author_visible('li.did')}
            ) e GROUP BY 1
        ) x ON x.day = d::date ORDER BY 1"""
    rows = await (await conn.execute(sql, {"start": start, "today": today})).fetchall()
    return [(r[0], int(r[1])) for r in rows]
