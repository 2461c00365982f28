"""A track's timed comments, ordered by playback position."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from appview.query.moderation import author_visible, record_visible


@dataclass(frozen=True, slots=True)
class CommentRow:
    id: int
    uri: str
    cid: str
    did: str
    text: str
    timestamp_ms: int
    created_at: str
    updated_at: str | None
    indexed_at: Any


async def for_track(conn: AsyncConnection, track_uri: str, limit: int | None,
                    after: tuple[int, int] | None = None) -> list[CommentRow]:
    """Comments on `track_uri` by (timestamp_ms, id); `after` continues past a (timestamp_ms, id).
    `limit=None` lists every one (plyr.fm's comment list has no pages; the `comment_subject` index
    serves it in order)."""
    keyset = "AND (c.timestamp_ms, c.id) > (%(ts)s, %(id)s)" if after else ""
    sql = f"""SELECT c.id, c.uri, c.cid, c.did, c.text, c.timestamp_ms, c.created_at, c.updated_at, c.indexed_at
              FROM comment c WHERE c.subject_uri = %(uri)s AND {record_visible('c')} {keyset}
              ORDER BY c.timestamp_ms, c.id LIMIT %(n)s"""
    params: dict[str, Any] = {"uri": track_uri, "n": limit}
    if after:
        params |= {"ts": after[0], "id": after[1]}
    return [CommentRow(*r) for r in await (await conn.execute(sql, params)).fetchall()]


async def likers(conn: AsyncConnection, track_uri: str, limit: int | None) -> list[tuple[str, Any]]:
    """(did, first like time) of each distinct active liker, newest first; `limit=None`: all of them."""
    sql = f"""SELECT l.did, min(l.sort_at) AS at FROM "like" l
              WHERE l.subject_uri = %s AND {author_visible('l.did')}
              GROUP BY l.did ORDER BY at DESC, l.did LIMIT %s"""
    return [(r[0], r[1]) for r in await (await conn.execute(sql, (track_uri, limit))).fetchall()]
