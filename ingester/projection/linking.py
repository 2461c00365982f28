"""Linking teal.fm plays to plyr tracks, only when the play identifies exactly one.

The rule, in order:
1. The play's origin (`originUri`/`originUrl`) is an `at://<did>/fm.plyr.track/<rkey>` URI: linked
   to that track when we have it (`link = 'uri'`), else `unmatched` until it arrives. Never a guess.
2. Otherwise, only for plays made on plyr.fm (music service or origin host `plyr.fm`): the tracks
   whose `title` equals the play's `trackName` exactly and whose `artist` equals one of the play's
   artist names exactly. Exactly one → linked (`name`); two or more → `ambiguous`, unlinked; none →
   `unmatched`. plyr's own `originUri` (`https://plyr.fm/track/<id>`) carries plyr's database id,
   which means nothing to another AppView, so it only marks the play as made on plyr.

A link is a function of the current `track` table, so every change that can alter it re-judges the
plays concerned in the same transaction: new or updated plays; tracks created, updated or deleted
(plays naming their old or new title, or their URI); an account purge (plays linked to its tracks
or ambiguous). Hence rebuild == live whatever the order tracks and plays arrived in.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from ingester.projection import counters
from ingester.projection.base import Put
from ingester.projection.teal import PLAY_COLLECTIONS, PLYR_TRACK
from ingester.projection.writes import TextArray

_TARGETED = """
    WHERE uri = ANY(%(plays)s) OR track_name = ANY(%(titles)s) OR subject_uri = ANY(%(tracks)s)
       OR (%(purged)s::text IS NOT NULL AND (link = 'ambiguous'
           OR starts_with(track_uri, %(purged)s) OR starts_with(subject_uri, %(purged)s)))
"""
_RELINK_TEMPLATE = """
WITH target AS (
    SELECT uri, subject_uri, track_name, artists, plyr_origin FROM play {where}
), candidate AS (
    SELECT g.uri, t.uri AS track_uri FROM target g JOIN track t ON t.uri = g.subject_uri
    UNION ALL
    SELECT g.uri, t.uri FROM target g JOIN track t ON t.title = g.track_name
    WHERE g.subject_uri IS NULL AND g.plyr_origin AND g.artists ? t.artist
), verdict AS (
    SELECT g.uri, g.subject_uri, count(c.track_uri) AS n, min(c.track_uri) AS track_uri
    FROM target g LEFT JOIN candidate c ON c.uri = g.uri
    GROUP BY g.uri, g.subject_uri
)
UPDATE play p SET
    track_uri = CASE WHEN v.n = 1 THEN v.track_uri END,
    link = CASE WHEN v.n = 0 THEN 'unmatched' WHEN v.n > 1 THEN 'ambiguous'
                WHEN v.subject_uri IS NOT NULL THEN 'uri' ELSE 'name' END
FROM verdict v JOIN play o ON o.uri = v.uri WHERE p.uri = v.uri
RETURNING o.track_uri, p.track_uri, p.did
"""
_RELINK = _RELINK_TEMPLATE.format(where=_TARGETED)
_RELINK_ALL = _RELINK_TEMPLATE.format(where="")


async def relink(
    cur: psycopg.AsyncCursor,
    *,
    plays: Sequence[str] = (),
    titles: Sequence[str] = (),
    tracks: Sequence[str] = (),
    purged_did: str | None = None,
) -> None:
    if not (plays or titles or tracks or purged_did):
        return
    await cur.execute(_RELINK, {
        "plays": TextArray(plays), "titles": TextArray(set(titles)), "tracks": TextArray(tracks),
        "purged": f"at://{purged_did}/" if purged_did else None,
    })
    # `o` is the row as it was before this statement: the old linked track loses the play, the new one gains it.
    counters.mark_links(cur, [(old, new, did) for old, new, did in await cur.fetchall()])


Changes = dict[str, tuple[list[Put], list[str]]]


class PlayLinker:
    """A flush hook: remembers the old titles of tracks about to change, relinks after the writes."""

    async def before(self, cur: psycopg.AsyncCursor, changes: Changes) -> list[str]:
        puts, deleted = changes.get(PLYR_TRACK, ([], []))
        uris = [p.event.uri for p in puts] + deleted
        if not uris:
            return []
        await cur.execute("SELECT title FROM track WHERE uri = ANY(%s)", (TextArray(uris),))
        return [r[0] for r in await cur.fetchall()]

    async def after(self, cur: psycopg.AsyncCursor, changes: Changes, old_titles: list[str]) -> None:
        track_puts, track_deleted = changes.get(PLYR_TRACK, ([], []))
        titles = old_titles + [t for p in track_puts if isinstance(t := (p.event.record or {}).get("title"), str)]
        tracks = [p.event.uri for p in track_puts] + track_deleted
        plays = [p.event.uri for c in PLAY_COLLECTIONS for p in changes.get(c, ([], []))[0]]
        await relink(cur, plays=plays, titles=titles, tracks=tracks)

    async def recompute(self, cur: psycopg.AsyncCursor) -> None:
        """Judge every play against the tracks as they are (a rebuild's bulk load)."""
        await cur.execute(_RELINK_ALL)
