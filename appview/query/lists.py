"""Lists (albums, playlists, liked) and their ordered tracks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from appview.query.counters import track_plays
from appview.query.moderation import record_visible, track_visible

_COLS = "li.id, li.uri, li.cid, li.did, li.rkey, li.name, li.list_type, li.created_at, li.updated_at, li.sort_at"
# Tracks of a list that we can show, with the first cover among them.
_STATS = f"""
    (SELECT count(*) FROM list_item i JOIN track t ON t.uri = i.subject_uri
      WHERE i.list_uri = li.uri AND {track_visible('t')}) AS track_count,
    (SELECT t.image_url FROM list_item i JOIN track t ON t.uri = i.subject_uri
      WHERE i.list_uri = li.uri AND t.image_url IS NOT NULL AND {track_visible('t')}
      ORDER BY i.position LIMIT 1) AS image_url,
    (SELECT coalesce(array_agg(x.image_url ORDER BY x.position), '{{}}') FROM (
        SELECT DISTINCT ON (t.image_url) t.image_url, i.position FROM list_item i JOIN track t ON t.uri = i.subject_uri
        WHERE i.list_uri = li.uri AND t.image_url IS NOT NULL AND {track_visible('t')}
        ORDER BY t.image_url, i.position) x) AS images,
    (SELECT coalesce(sum({track_plays('t')}), 0) FROM list_item i JOIN track t ON t.uri = i.subject_uri
      WHERE i.list_uri = li.uri AND {track_visible('t')}) AS plays
"""


@dataclass(frozen=True, slots=True)
class ListRow:
    id: int
    uri: str
    cid: str
    did: str
    rkey: str
    name: str | None
    list_type: str | None
    created_at: str
    updated_at: str | None
    sort_at: Any
    track_count: int
    image_url: str | None
    images: list[str]
    plays: int


async def _lists(conn: AsyncConnection, where: str, params: tuple[Any, ...], order: str = "li.sort_at DESC, li.id DESC",
                 ) -> list[ListRow]:
    sql = (f"SELECT {_COLS}, {_STATS} FROM \"list\" li WHERE {where} AND {record_visible('li')} "
           f"ORDER BY {order}")
    return [ListRow(*r) for r in await (await conn.execute(sql, params)).fetchall()]


async def by_id(conn: AsyncConnection, list_id: int) -> ListRow | None:
    return (await by_ids(conn, [list_id])).get(list_id)


async def by_ids(conn: AsyncConnection, list_ids: list[int]) -> dict[int, ListRow]:
    """Visible lists among `list_ids`, in one query."""
    return {r.id: r for r in await _lists(conn, "li.id = ANY(%s)", (list_ids,))} if list_ids else {}


async def by_uri(conn: AsyncConnection, uri: str) -> ListRow | None:
    return (await by_uris(conn, [uri])).get(uri)


async def by_uris(conn: AsyncConnection, uris: list[str]) -> dict[str, ListRow]:
    return {r.uri: r for r in await _lists(conn, "li.uri = ANY(%s)", (uris,))} if uris else {}


async def of_actor(conn: AsyncConnection, did: str, list_type: str) -> list[ListRow]:
    return await _lists(conn, "li.did = %s AND li.list_type = %s", (did, list_type))


async def track_ids(conn: AsyncConnection, list_uri: str, limit: int | None = None, offset: int = 0) -> list[int]:
    """The list's tracks in list order; items whose track we don't have (or hide) are skipped.
    A track listed twice appears twice, as the record says."""
    sql = f"""SELECT t.id FROM list_item i JOIN track t ON t.uri = i.subject_uri
              WHERE i.list_uri = %s AND {track_visible('t')} ORDER BY i.position OFFSET %s LIMIT %s"""
    return [r[0] for r in await (await conn.execute(sql, (list_uri, offset, limit))).fetchall()]
