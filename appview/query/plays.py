"""teal.fm plays on read: counts per track, listening history, tops over time windows, plays per day,
now playing. Each function is one query, whatever the page size (no N+1).

Plays of deactivated / taken-down accounts are left out (their rows stay; reactivation brings them
back). Tops leave out plays linked to a track hidden everywhere by a label.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

from psycopg import AsyncConnection, sql

from appview.query.labels import hidden_by_labels

_ACTIVE = "NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = p.did AND NOT a.active)"
_TRACK_HIDDEN = sql.SQL(
    "p.track_uri IS NOT NULL AND EXISTS (SELECT 1 FROM track t WHERE t.uri = p.track_uri AND {})"
).format(hidden_by_labels("t", context="view"))


class BadCursor(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Window:
    """Plays with since <= played_at < until (either end open when None), optionally one listener."""

    did: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> sql.Composed:
        parts: list[sql.Composed | sql.SQL] = [sql.SQL(_ACTIVE)]
        if self.did is not None:
            parts.append(sql.SQL("p.did = {}").format(sql.Literal(self.did)))
        if self.since is not None:
            parts.append(sql.SQL("p.played_at >= {}").format(sql.Literal(self.since)))
        if self.until is not None:
            parts.append(sql.SQL("p.played_at < {}").format(sql.Literal(self.until)))
        return sql.SQL(" AND ").join(parts)


async def _rows(conn: AsyncConnection, query: sql.Composed | sql.SQL | LiteralString, params: Any = None
                ) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def play_counts(conn: AsyncConnection, track_uris: Sequence[str]) -> dict[str, int]:
    """{track uri: plays linked to it}; tracks without plays are absent (read as 0)."""
    if not track_uris:
        return {}
    rows = await _rows(conn, sql.SQL(
        "SELECT p.track_uri, count(*) FROM play p WHERE p.track_uri = ANY(%s) AND " + _ACTIVE
        + " GROUP BY p.track_uri"
    ), (list(track_uris),))
    return {uri: int(n) for uri, n in rows}


def pack_cursor(played_at: datetime, uri: str) -> str:
    return base64.urlsafe_b64encode(f"{played_at.isoformat()}|{uri}".encode()).decode().rstrip("=")


def unpack_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, uri = raw.split("|", 1)
        parsed = datetime.fromisoformat(when)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadCursor("malformed cursor") from e
    if parsed.tzinfo is None or not uri:
        raise BadCursor("malformed cursor")
    return parsed, uri


_PLAY_COLUMNS = sql.SQL(
    "p.uri, p.did, p.cid, p.track_name, p.artists, p.release_name, p.duration, p.played_at, p.origin_uri,"
    " p.music_service, p.client_agent, p.track_uri, p.link, p.collection"
)


def play_view(row: tuple[Any, ...]) -> dict[str, Any]:
    (uri, did, cid, name, artists, release, duration, played_at, origin, service, agent, track_uri, link,
     collection) = row
    view: dict[str, Any] = {
        "uri": uri, "cid": cid, "did": did, "collection": collection, "trackName": name,
        "artists": [{"artistName": a} for a in artists], "playedTime": played_at.isoformat(),
        "link": link,
    }
    for key, value in (("releaseName", release), ("duration", duration), ("originUri", origin),
                       ("musicService", service), ("submissionClientAgent", agent), ("track", track_uri)):
        if value is not None:
            view[key] = value
    return view


async def history(
    conn: AsyncConnection, did: str, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A listener's plays, newest first, keyset-paginated on (played_at, uri)."""
    after: sql.Composed | sql.SQL = sql.SQL("")
    if cursor:
        when, uri = unpack_cursor(cursor)
        after = sql.SQL(" AND (p.played_at, p.uri) < ({}, {})").format(sql.Literal(when), sql.Literal(uri))
    rows = await _rows(conn, sql.SQL(
        "SELECT {} FROM play p WHERE {}{} ORDER BY p.played_at DESC, p.uri DESC LIMIT {}"
    ).format(_PLAY_COLUMNS, Window(did=did).where(), after, sql.Literal(limit + 1)))
    page = rows[:limit]
    next_cursor = pack_cursor(page[-1][7], page[-1][0]) if len(rows) > limit and page else None
    return [play_view(r) for r in page], next_cursor


async def top_tracks(conn: AsyncConnection, window: Window, *, limit: int = 20) -> list[dict[str, Any]]:
    """Most played tracks: linked plays grouped by track, unlinked ones by (name, artists)."""
    rows = await _rows(conn, sql.SQL("""
        SELECT p.track_uri, min(p.track_name), (array_agg(p.artists ORDER BY p.uri))[1], count(*) AS n
        FROM play p WHERE {} AND NOT ({})
        GROUP BY p.track_uri, CASE WHEN p.track_uri IS NULL THEN p.track_name END,
                 CASE WHEN p.track_uri IS NULL THEN p.artists END
        ORDER BY n DESC, min(p.track_name), p.track_uri NULLS LAST LIMIT {}
    """).format(window.where(), _TRACK_HIDDEN, sql.Literal(limit)))
    out = []
    for track_uri, name, artists, n in rows:
        item: dict[str, Any] = {"trackName": name, "artists": [{"artistName": a} for a in artists], "plays": n}
        if track_uri is not None:
            item["track"] = track_uri
        out.append(item)
    return out


async def top_artists(conn: AsyncConnection, window: Window, *, limit: int = 20) -> list[dict[str, Any]]:
    """Most played artist names (a play with two artists counts once for each)."""
    rows = await _rows(conn, sql.SQL("""
        SELECT a.name, count(*) AS n
        FROM play p CROSS JOIN LATERAL jsonb_array_elements_text(p.artists) AS a(name)
        WHERE {} AND NOT ({})
        GROUP BY a.name ORDER BY n DESC, a.name LIMIT {}
    """).format(window.where(), _TRACK_HIDDEN, sql.Literal(limit)))
    return [{"artistName": name, "plays": n} for name, n in rows]


async def plays_per_day(conn: AsyncConnection, window: Window) -> list[dict[str, Any]]:
    """Plays per UTC day, oldest first; days without plays are absent."""
    rows = await _rows(conn, sql.SQL("""
        SELECT (p.played_at AT TIME ZONE 'UTC')::date AS day, count(*)
        FROM play p WHERE {} GROUP BY day ORDER BY day
    """).format(window.where()))
    return [{"day": day.isoformat(), "plays": n} for day, n in rows]


async def now_playing(conn: AsyncConnection, did: str) -> dict[str, Any] | None:
    """The listener's latest unexpired teal status (either namespace), or None."""
    rows = await _rows(conn, """
        SELECT s.uri, s.cid, s.time, s.expiry, s.item FROM actor_status s
        WHERE s.did = %s AND s.expiry > now()
          AND NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = s.did AND NOT a.active)
        ORDER BY s.time DESC LIMIT 1
    """, (did,))
    if not rows:
        return None
    uri, cid, time, expiry, item = rows[0]
    return {"uri": uri, "cid": cid, "time": time.isoformat(), "expiry": expiry.isoformat(), "item": item}
