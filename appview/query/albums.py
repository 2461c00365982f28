"""Albums as plyr.fm makes them: from the tracks' `album` names, ordered by an album list record.

plyr.fm (backend/src/backend/api/tracks/services.py `get_or_create_album`, api/albums/listing.py) keys an
album on (artist, slug of its title) and files a track under the album its `album` name slugs to; the
`fm.plyr.list` record with `listType: album` only orders the album (and names it). The network carries
both halves, so the same rule is a pure function of our projections:

* **key**: (artist DID, `slug`), `slug` = plyr.fm's `slugify` (NFKD → ASCII, lower case, keep
  `[a-z0-9]`, whitespace → `-`, collapse and trim dashes, cut to 100 at a dash), `untitled` when empty.
* **members**: the artist's own visible tracks whose `album` slugs to the key; a track without an
  `album` name belongs to the newest album list record of its artist that lists it.
* **metadata**: the newest album list record of that key (id, uri, cid, name, createdAt); without one,
  the album is derived: id = the first member track's id (a log seq, so it never collides with a list's),
  title = the first member's `album` string (plyr.fm keeps the first title it saw), no uri.
* **order**: the list record's order first (a track listed twice counts at its first position), then
  the members it does not list, by sortAt (createdAt, or when we first saw it) and id.
* Albums without a visible member are not shown (plyr.fm's `HAVING count > 0`).

Slugs are computed in SQL (`public.plyr_slug`, migration 0014, stored in `track.album_slug` and `list.slug`)
and in Python (`slugify`) by the same steps; a property test checks they agree.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from appview.query.counters import track_plays
from appview.query.moderation import record_visible, track_visible

SLUG_MAX = 100
UNTITLED = "untitled"
# Python's `\s` after the ASCII fold: ASCII whitespace plus the information separators \x1c-\x1f.
_WS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f "


def slugify(name: str | None) -> str:
    """plyr.fm's `slugify` (backend/utilities/slugs.py), with `untitled` for what slugs to nothing."""
    slug = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(f"[^a-z0-9{re.escape(_WS)}-]", "", slug)
    slug = re.sub(f"[{re.escape(_WS)}]+", "-", slug)
    slug = re.sub(r"-+", "-", slug).strip("-")
    if len(slug) > SLUG_MAX:
        slug = slug[:SLUG_MAX]
        cut = slug.rfind("-")
        if cut > 0:
            slug = slug[:cut]
    return slug or UNTITLED


def _members(where_li: str, where_t: str) -> str:
    """CTEs `al` (album list records), `meta` (the newest per key) and `m` (member tracks with their
    list position), restricted by the SQL conditions on `li` and `t`. `track.album_slug` and `list.slug`
    are stored generated columns (`public.plyr_slug`, migration 0014), indexed per artist."""
    return f"""
    al AS (SELECT li.id, li.uri, li.cid, li.did, li.name, li.created_at, li.sort_at, li.slug
             FROM "list" li WHERE li.list_type = 'album' AND {record_visible('li')} AND {where_li}),
    meta AS (SELECT DISTINCT ON (did, slug) * FROM al ORDER BY did, slug, sort_at DESC, id DESC),
    mem AS (SELECT t.id, t.uri, t.did, t.sort_at, t.created_at, t.image_url, t.album,
                   coalesce(t.album_slug,
                            (SELECT al.slug FROM list_item i JOIN al ON al.uri = i.list_uri
                              WHERE i.subject_uri = t.uri AND al.did = t.did
                              ORDER BY al.sort_at DESC, al.id DESC LIMIT 1)) AS slug
              FROM track t WHERE {track_visible('t')} AND {where_t}),
    m AS (SELECT mem.*, (SELECT min(i.position) FROM list_item i JOIN meta ON meta.uri = i.list_uri
                          WHERE meta.did = mem.did AND meta.slug = mem.slug AND i.subject_uri = mem.uri) AS pos
            FROM mem WHERE mem.slug IS NOT NULL)"""


_ORDER = "m.pos NULLS LAST, m.sort_at, m.id"
_ALBUMS = """
WITH {members}
SELECT m.did, m.slug, coalesce(min(meta.id), min(m.id)) AS id,
       coalesce(nullif(min(meta.name), ''), (array_agg(m.album ORDER BY m.sort_at, m.id)
                 FILTER (WHERE btrim(coalesce(m.album, '')) <> ''))[1], '{untitled}') AS title,
       min(meta.uri), min(meta.cid),
       coalesce(min(meta.created_at), (array_agg(m.created_at ORDER BY m.sort_at, m.id))[1]),
       coalesce(min(meta.sort_at), min(m.sort_at)),
       count(*) AS track_count,
       (array_agg(m.image_url ORDER BY {order}) FILTER (WHERE m.image_url IS NOT NULL))[1] AS image_url,
       sum({plays}) AS plays
FROM m LEFT JOIN meta ON meta.did = m.did AND meta.slug = m.slug
GROUP BY m.did, m.slug
ORDER BY lower(coalesce(nullif(min(meta.name), ''), (array_agg(m.album ORDER BY m.sort_at, m.id)
          FILTER (WHERE btrim(coalesce(m.album, '')) <> ''))[1], '{untitled}')), m.did, m.slug
"""


@dataclass(frozen=True, slots=True)
class AlbumRow:
    did: str
    slug: str
    id: int  # the list record's id, else the first member track's id (both log seqs)
    title: str
    uri: str | None  # the album list record, when there is one
    cid: str | None
    created_at: str
    sort_at: Any
    track_count: int
    image_url: str | None  # the first cover in album order
    plays: int


async def _albums(conn: AsyncConnection, where_li: str, where_t: str, params: dict[str, Any]) -> list[AlbumRow]:
    sql = _ALBUMS.format(members=_members(where_li, where_t), order=_ORDER, untitled=UNTITLED,
                         plays=track_plays("m"))
    rows = await (await conn.execute(sql, params)).fetchall()
    return [AlbumRow(r[0], r[1], int(r[2]), r[3], r[4], r[5], r[6], r[7], int(r[8]), r[9], int(r[10] or 0))
            for r in rows]


async def of_actor(conn: AsyncConnection, did: str) -> list[AlbumRow]:
    """An artist's albums with at least one visible track, by title (plyr.fm's `/albums/{handle}`)."""
    return await _albums(conn, "li.did = %(did)s", "t.did = %(did)s", {"did": did})


async def all_albums(conn: AsyncConnection) -> list[AlbumRow]:
    """Every album with at least one visible track, by title (plyr.fm's `/albums/`)."""
    return await _albums(conn, "true", "(t.album_slug IS NOT NULL OR EXISTS (SELECT 1 FROM list_item i "
                                       "JOIN \"list\" l2 ON l2.uri = i.list_uri WHERE i.subject_uri = t.uri "
                                       "AND l2.list_type = 'album' AND l2.did = t.did))", {})


async def by_slug(conn: AsyncConnection, did: str, slug: str) -> AlbumRow | None:
    return next((a for a in await of_actor(conn, did) if a.slug == slug), None)


async def by_list_uri(conn: AsyncConnection, uri: str) -> AlbumRow | None:
    """The album an album list record names (None: no such visible record, or no visible member)."""
    cur = await conn.execute(f"SELECT li.did, li.slug FROM \"list\" li WHERE li.uri = %s "
                             f"AND li.list_type = 'album' AND {record_visible('li')}", (uri,))
    row = await cur.fetchone()
    return None if row is None else await by_slug(conn, row[0], row[1])


async def track_ids(conn: AsyncConnection, did: str, slug: str, limit: int | None = None, offset: int = 0,
                    ) -> list[int]:
    """The album's visible tracks in album order (list order first, then the rest by sortAt)."""
    sql = (f"WITH {_members('li.did = %(did)s', 't.did = %(did)s')} "
           f"SELECT m.id FROM m WHERE m.slug = %(slug)s ORDER BY {_ORDER} OFFSET %(offset)s LIMIT %(limit)s")
    params = {"did": did, "slug": slug, "offset": offset, "limit": limit}
    return [r[0] for r in await (await conn.execute(sql, params)).fetchall()]


# For hydration: the album of each track on a page — its key, then the album's id, title, uri and the list
# record's first cover — by index lookups on (did, slug), whatever the artist's catalogue size.
TRACK_ALBUM_SQL = f"""
LEFT JOIN LATERAL (
    SELECT coalesce(t.album_slug,
                    (SELECT li.slug FROM list_item i JOIN "list" li ON li.uri = i.list_uri
                      WHERE i.subject_uri = t.uri AND li.list_type = 'album' AND li.did = t.did
                        AND {record_visible('li')}
                      ORDER BY li.sort_at DESC, li.id DESC LIMIT 1)) AS slug
) alb_key ON true
LEFT JOIN LATERAL (
    SELECT li.id, li.uri, li.name,
           (SELECT ft.image_url FROM list_item fi JOIN track ft ON ft.uri = fi.subject_uri
             WHERE fi.list_uri = li.uri AND ft.image_url IS NOT NULL ORDER BY fi.position LIMIT 1) AS image_url
      FROM "list" li
     WHERE li.did = t.did AND li.list_type = 'album' AND li.slug = alb_key.slug AND {record_visible('li')}
     ORDER BY li.sort_at DESC, li.id DESC LIMIT 1
) alb_list ON true
LEFT JOIN LATERAL (
    SELECT t2.id, t2.album FROM track t2
     WHERE alb_list.id IS NULL AND t2.did = t.did AND t2.album_slug = alb_key.slug AND {track_visible('t2')}
     ORDER BY t2.sort_at, t2.id LIMIT 1
) alb_first ON true
"""
# Columns: album id, uri (null when derived), title, cover, slug.
TRACK_ALBUM_COLUMNS = ("coalesce(alb_list.id, alb_first.id), alb_list.uri, "
                       f"coalesce(nullif(alb_list.name, ''), alb_first.album, '{UNTITLED}'), alb_list.image_url, "
                       "alb_key.slug")
