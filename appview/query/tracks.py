"""Track skeletons: which track ids a page holds, in order. Hydration fills them in."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from appview.query import cursor as cursors
from appview.query.moderation import author_visible, track_listable, track_visible

PERIODS: dict[str, timedelta | None] = {
    "all_time": None, "month": timedelta(days=30), "week": timedelta(days=7), "day": timedelta(days=1),
}


@dataclass(frozen=True, slots=True)
class Page:
    ids: list[int]
    cursor: str | None  # of the next page; None when this is the last one


async def _keyset(conn: AsyncConnection, where: str, params: dict[str, Any], cursor: str | None,
                  limit: int) -> Page:
    c = cursors.decode(cursor)
    if c is not None:
        where += " AND (t.sort_at, t.id) < (%(c_at)s, %(c_id)s)"
        params = {**params, "c_at": c.at, "c_id": c.id}
    sql = f"SELECT t.id, t.sort_at FROM track t WHERE {where} ORDER BY t.sort_at DESC, t.id DESC LIMIT %(n)s"
    cur = await conn.execute(sql, {**params, "n": limit + 1})
    rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([r[0] for r in rows], cursors.encode(rows[-1][1], rows[-1][0]) if more and rows else None)


@functools.cache
def uri_where() -> str:
    """One track by its AT-URI (parameter `uri`), VIEW context."""
    return f"t.uri = %(uri)s AND {track_visible('t')}"


@functools.cache
def id_where() -> str:
    """One track by its id (parameter `id`), VIEW context."""
    return f"t.id = %(id)s AND {track_visible('t')}"


@functools.cache
def latest_where() -> str:
    """The discovery feed's condition over track `t` (LIST context; parameter `viewer`)."""
    return track_listable("t")


@functools.cache
def artist_where() -> str:
    """An artist page's condition over track `t` (VIEW context: adult tracks shown; parameter `did`)."""
    return f"t.did = %(did)s AND {track_visible('t')}"


async def latest(conn: AsyncConnection, viewer: str | None, cursor: str | None, limit: int) -> Page:
    """The discovery feed: newest first, LIST context."""
    return await _keyset(conn, latest_where(), {"viewer": viewer}, cursor, limit)


async def by_artist(conn: AsyncConnection, did: str, cursor: str | None, limit: int) -> Page:
    """An artist page: VIEW context (adult tracks shown, as on plyr.fm)."""
    return await _keyset(conn, artist_where(), {"did": did}, cursor, limit)


async def top(conn: AsyncConnection, viewer: str | None, period: str, limit: int) -> list[int]:
    """Most liked (distinct active likers) within `period`, at least one like, LIST context."""
    span = PERIODS[period]
    if span is None:  # all time: the maintained counts, walked in like order
        sql = f"""SELECT t.id FROM subject_count c JOIN track t ON t.uri = c.subject_uri
                  WHERE c.like_count > 0 AND {track_listable('t')}
                  ORDER BY c.like_count DESC, t.id DESC LIMIT %(n)s"""
        cur = await conn.execute(sql, {"viewer": viewer, "n": limit})
        return [r[0] for r in await cur.fetchall()]
    since = datetime.now(UTC) - span
    window = "AND l.sort_at >= %(since)s"
    sql = f"""
        SELECT t.id FROM (
            SELECT l.subject_uri, count(DISTINCT l.did) AS n, max(l.sort_at) AS last
            FROM "like" l WHERE {author_visible('l.did')} {window}
            GROUP BY l.subject_uri
        ) c JOIN track t ON t.uri = c.subject_uri
        WHERE {track_listable('t')}
        ORDER BY c.n DESC, c.last DESC, t.id DESC LIMIT %(n)s"""
    cur = await conn.execute(sql, {"viewer": viewer, "since": since, "n": limit})
    return [r[0] for r in await cur.fetchall()]


async def ids_by_uris(conn: AsyncConnection, uris: list[str]) -> dict[str, int]:
    cur = await conn.execute(
        f"SELECT t.uri, t.id FROM track t WHERE t.uri = ANY(%s) AND {track_visible('t')}", (uris,))
    return {r[0]: r[1] for r in await cur.fetchall()}


async def visible_id(conn: AsyncConnection, track_id: int) -> int | None:
    return track_id if await visible_uri(conn, track_id) is not None else None


async def visible_uri(conn: AsyncConnection, track_id: int) -> str | None:
    cur = await conn.execute(f"SELECT t.uri FROM track t WHERE {id_where()}", {"id": track_id})
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def liked_by(conn: AsyncConnection, did: str, limit: int, cursor: str | None = None) -> tuple[Page, int]:
    """A user's liked tracks, newest like first (VIEW context); and how many there are in all."""
    c = cursors.decode(cursor)
    keyset = "AND (lk.at, lk.id) < (%(c_at)s, %(c_id)s)" if c else ""
    sql = f"""
        WITH lk AS (
            SELECT t.id, max(l.sort_at) AS at FROM "like" l JOIN track t ON t.uri = l.subject_uri
            WHERE l.did = %(did)s AND {track_visible('t')} GROUP BY t.id
        )
        SELECT lk.id, lk.at, (SELECT count(*) FROM lk) FROM lk WHERE true {keyset}
        ORDER BY lk.at DESC, lk.id DESC LIMIT %(n)s"""
    params: dict[str, Any] = {"did": did, "n": limit + 1}
    if c:
        params |= {"c_at": c.at, "c_id": c.id}
    rows = await (await conn.execute(sql, params)).fetchall()
    total = rows[0][2] if rows else await _count_likes(conn, did)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = cursors.encode(rows[-1][1], rows[-1][0]) if more and rows else None
    return Page([r[0] for r in rows], nxt), total


async def _count_likes(conn: AsyncConnection, did: str) -> int:
    sql = f"""SELECT count(DISTINCT t.id) FROM "like" l JOIN track t ON t.uri = l.subject_uri
              WHERE l.did = %s AND {track_visible('t')}"""
    row = await (await conn.execute(sql, (did,))).fetchone()
    return int(row[0]) if row else 0
