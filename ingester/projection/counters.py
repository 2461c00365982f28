"""`track_counter`, `artist_counter`, `global_counter`: counts maintained in the projector's transaction.

Every write that can change a count marks what it touched (a track URI, an artist DID) on the
connection; `settle` then recounts the marked tracks from the projected rows (each track's row also
keeps its share of its artist's sums), re-sums the marked artists from their tracks, moves every other
artist by the difference its marked tracks' shares made, and the global row by the difference between
each artist's old and new contribution. Recounting (never incrementing blindly) keeps the counters a pure
function of the other projections: a rebuild, a replay, a duplicate or a delete of something never
created all end on the same numbers, and a stale mark only costs a recount.

Who marks: `counts.recount` (likes and comments of a subject), the play projector and `linking.relink`
(a play's linked track before and after: `mark_links`, so a track's plays move by one per link instead of
being counted again), this module's flush hook (tracks written or deleted) and `account_changed` (an
account's plays, likes, comments and tracks follow its status: counted again). Links are settled in the
flush that made them, before any account event of the page changes whose plays count.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from core.labels import HIDE_EVERYWHERE
from ingester.projection.base import Put

TRACK = "fm.plyr.track"
MAX_TRACK_DURATION_S = 24 * 3600  # as the readers bound a track's share of any sum


@dataclass(slots=True)
class _Dirty:
    tracks: set[str] = field(default_factory=set)
    artists: set[str] = field(default_factory=set)
    # Tracks whose plays are counted again from `play`; every other marked track's plays move by `links`.
    recount_plays: set[str] = field(default_factory=set)
    # (track URI, listener DID, +1 linked / -1 unlinked): each play link made or undone since the last settle.
    links: list[tuple[str, str, int]] = field(default_factory=list)


_dirty: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], _Dirty] = weakref.WeakKeyDictionary()


def _of(cur: psycopg.AsyncCursor[Any]) -> _Dirty:
    return _dirty.setdefault(cur.connection, _Dirty())


def mark_tracks(cur: psycopg.AsyncCursor[Any], uris: set[str] | list[str], *, plays: bool = True) -> None:
    """These subjects' counts may have changed (URIs that are not tracks are ignored at settle). `plays=False`:
    their plays changed only by the links `mark_links` reported (a like, a comment, a track write)."""
    dirty = _of(cur)
    marked = [u for u in uris if u]
    dirty.tracks.update(marked)
    if plays:
        dirty.recount_plays.update(marked)


def mark_links(cur: psycopg.AsyncCursor[Any], changes: Iterable[tuple[str | None, str | None, str]]) -> None:
    """Plays whose link moved, each as (the track it counted for, the track it counts for now, its listener):
    those tracks' play counts move by one each, at settle, for listeners whose account is active then."""
    dirty = _of(cur)
    for old, new, listener in changes:
        if old == new:
            continue
        for uri, sign in ((old, -1), (new, 1)):
            if uri:
                dirty.tracks.add(uri)
                dirty.links.append((uri, listener, sign))


def mark_artists(cur: psycopg.AsyncCursor[Any], dids: set[str] | list[str]) -> None:
    _of(cur).artists.update(dids)


def _did_of(uri: str) -> str | None:
    parts = uri.split("/")
    return parts[2] if len(parts) > 4 and parts[0] == "at:" and parts[3] == TRACK else None


_HIDE = "ARRAY[" + ", ".join(f"'{v}'" for v in HIDE_EVERYWHERE) + "]::text[]"
_INACTIVE = "EXISTS (SELECT 1 FROM actor a WHERE a.did = {did} AND NOT a.active)"

# Each marked track's row as the projections now say: its counts and its share of the artist's sums.
_SHARE_COLUMNS = "uri, did, plays, likes, comments, duration_s, counted"
_SUMS = ("tracks", "duration_s", "plays", "likes", "comments")
_MARKED = f"""
d AS (SELECT u.uri, bool_or(u.recount) AS recount FROM unnest(%(uris)s::text[], %(recount)s::bool[]) AS u(uri, recount)
      GROUP BY u.uri),
moved AS (
    SELECT x.uri, sum(x.sign) AS n FROM unnest(%(link_uris)s::text[], %(link_dids)s::text[], %(link_signs)s::int[])
        AS x(uri, did, sign)
    WHERE NOT {_INACTIVE.format(did='x.did')} GROUP BY x.uri
),
new AS (
    SELECT t.uri, t.did,
           CASE WHEN d.recount OR tc0.uri IS NULL
                THEN (SELECT count(*) FROM play p WHERE p.track_uri = t.uri AND NOT {_INACTIVE.format(did='p.did')})
                ELSE coalesce(tc0.plays, 0) + coalesce(mv.n, 0) END AS plays,
           coalesce(sc.like_count, 0) AS likes, coalesce(sc.comment_count, 0) AS comments,
           least(greatest(coalesce(t.duration, 0), 0), {MAX_TRACK_DURATION_S}) AS duration_s,
           NOT (t.self_labels ?| {_HIDE}) AS counted
    FROM d JOIN track t ON t.uri = d.uri
    LEFT JOIN subject_count sc ON sc.subject_uri = t.uri
    LEFT JOIN track_counter tc0 ON tc0.uri = t.uri
    LEFT JOIN moved mv ON mv.uri = t.uri
),
gone AS (
    DELETE FROM track_counter tc USING d
    WHERE tc.uri = d.uri AND NOT EXISTS (SELECT 1 FROM track t WHERE t.uri = d.uri)
)"""
_UPSERT = f"""INSERT INTO track_counter ({_SHARE_COLUMNS}) SELECT {_SHARE_COLUMNS} FROM new
ON CONFLICT (uri) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in _SHARE_COLUMNS.split(", ")[2:])}"""

# Tracks of artists recounted whole below (`_ARTISTS`): only their own rows.
_TRACKS = f"WITH {_MARKED}\n{_UPSERT}"

# Tracks of every other artist: the artist's row, and the global one, move by the difference between each
# track's share before (its row as this statement found it) and after. Exact, never a blind increment, and
# as cheap for an artist with 50,000 tracks as for one with one (a re-sum of the artist costs 100 ms there).
_TRACKS_MOVING = f"""
WITH {_MARKED},
old AS (SELECT tc.* FROM track_counter tc JOIN d ON d.uri = tc.uri),
up AS ({_UPSERT}),
delta AS (
    SELECT did, {", ".join(f"sum(sign * {c}) AS {c}" for c in _SUMS)}
    FROM (SELECT 1 AS sign, did, 1 AS tracks, duration_s, plays, likes, comments FROM new WHERE counted
          UNION ALL
          SELECT -1, did, 1, duration_s, plays, likes, comments FROM old WHERE counted) s
    GROUP BY did
    HAVING {" OR ".join(f"sum(sign * {c}) <> 0" for c in _SUMS)}
),
art AS (
    INSERT INTO artist_counter (did, {", ".join(_SUMS)}, counted)
    SELECT did, {", ".join(_SUMS)}, NOT {_INACTIVE.format(did='delta.did')} FROM delta
    ON CONFLICT (did) DO UPDATE SET {", ".join(f"{c} = artist_counter.{c} + EXCLUDED.{c}" for c in _SUMS)}
    RETURNING did, tracks, counted
)
INSERT INTO global_counter (id, artists, {", ".join(_SUMS)})
SELECT 1, sum((art.tracks > 0)::int - (art.tracks - delta.tracks > 0)::int),
       {", ".join(f"sum(delta.{c})" for c in _SUMS)}
FROM art JOIN delta ON delta.did = art.did WHERE art.counted
HAVING count(*) > 0
ON CONFLICT (id) DO UPDATE SET artists = global_counter.artists + EXCLUDED.artists,
    {", ".join(f"{c} = global_counter.{c} + EXCLUDED.{c}" for c in _SUMS)}
"""
# An artist whose last counted track went: no row (as `_ARTISTS` leaves it).
_NO_TRACKS = "DELETE FROM artist_counter WHERE did = ANY(%(dids)s) AND tracks = 0"

# A track orphaned by its artist's purge leaves with the artist's other rows.
_ORPHANS = """
DELETE FROM track_counter tc WHERE tc.did = ANY(%(dids)s)
  AND NOT EXISTS (SELECT 1 FROM track t WHERE t.uri = tc.uri)
"""

_ARTISTS = f"""
WITH d AS (SELECT DISTINCT unnest(%(dids)s::text[]) AS did),
old AS (SELECT ac.* FROM artist_counter ac JOIN d ON d.did = ac.did),
new AS (
    SELECT d.did, count(t.uri) AS tracks,
           coalesce(sum(least(greatest(coalesce(t.duration, 0), 0), {MAX_TRACK_DURATION_S})), 0) AS duration_s,
           coalesce(sum(tc.plays), 0) AS plays, coalesce(sum(tc.likes), 0) AS likes,
           coalesce(sum(tc.comments), 0) AS comments, NOT {_INACTIVE.format(did='d.did')} AS counted
    FROM d
    LEFT JOIN track t ON t.did = d.did AND NOT (t.self_labels ?| {_HIDE})
    LEFT JOIN track_counter tc ON tc.uri = t.uri
    GROUP BY d.did
),
gone AS (DELETE FROM artist_counter ac USING new WHERE ac.did = new.did AND new.tracks = 0),
kept AS (
    INSERT INTO artist_counter (did, {", ".join(_SUMS)}, counted)
    SELECT did, {", ".join(_SUMS)}, counted FROM new WHERE tracks > 0
    ON CONFLICT (did) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in _SUMS)}, counted = EXCLUDED.counted
),
delta AS (
    SELECT 1 AS sign, new.* FROM new WHERE counted AND tracks > 0
    UNION ALL
    SELECT -1, old.* FROM old WHERE counted
)
INSERT INTO global_counter (id, artists, {", ".join(_SUMS)})
SELECT 1, coalesce(sum(sign), 0), {", ".join(f"coalesce(sum(sign * {c}), 0)" for c in _SUMS)} FROM delta
ON CONFLICT (id) DO UPDATE SET artists = global_counter.artists + EXCLUDED.artists,
    {", ".join(f"{c} = global_counter.{c} + EXCLUDED.{c}" for c in _SUMS)}
"""
_EMPTY_GLOBAL = f"DELETE FROM global_counter WHERE artists = 0 AND {' AND '.join(f'{c} = 0' for c in _SUMS)}"


async def settle(cur: psycopg.AsyncCursor[Any]) -> None:
    """Recount everything marked on this connection since the last settle: marked artists whole, from their
    tracks; the artists of other marked tracks by the difference those tracks make. A track's plays are
    counted again where a mark asked for it, else moved by the links reported since the last settle."""
    dirty = _dirty.pop(cur.connection, None)
    if dirty is None or not (dirty.tracks or dirty.artists):
        return
    moving: list[str] = []
    fixed: list[str] = []
    for uri in sorted(dirty.tracks):
        (fixed if _did_of(uri) in dirty.artists else moving).append(uri)
    if moving:
        await cur.execute(_TRACKS_MOVING, _marked(moving, dirty))
        await cur.execute(_NO_TRACKS, {"dids": sorted({d for u in moving if (d := _did_of(u))})})
    if fixed:  # their artists are re-summed whole: every count of theirs is counted again too
        await cur.execute(_TRACKS, _marked(fixed, dirty, recount=True))
    if dirty.artists:
        await cur.execute(_ORPHANS, {"dids": sorted(dirty.artists)})
        await cur.execute(_ARTISTS, {"dids": sorted(dirty.artists)})
    await cur.execute(_EMPTY_GLOBAL)


def _marked(uris: list[str], dirty: _Dirty, recount: bool = False) -> dict[str, Any]:
    """`_MARKED`'s parameters for `uris`: which of them count their plays again, and the links that move the rest."""
    wanted = set(uris)
    links = [link for link in dirty.links if link[0] in wanted]
    return {"uris": uris, "recount": [recount or u in dirty.recount_plays for u in uris],
            "link_uris": [u for u, _, _ in links], "link_dids": [d for _, d, _ in links],
            "link_signs": [n for _, _, n in links]}


async def account_changed(cur: psycopg.AsyncCursor[Any], did: str) -> None:
    """An account's status changed (or it was purged): its plays, its tracks and its artist row follow."""
    await cur.execute("SELECT DISTINCT track_uri FROM play WHERE did = %s AND track_uri IS NOT NULL", (did,))
    mark_tracks(cur, [r[0] for r in await cur.fetchall()])
    mark_artists(cur, [did])
    await settle(cur)


Changes = dict[str, tuple[list[Put], list[str]]]


class Counters:
    """Flush hook, after every other: tracks written or deleted are marked, then everything marked is settled.

    A `base.Derived` hook: a rebuild's bulk load skips it per page and calls `recompute` once, after the counts
    and play links it reads are recomputed (it is last in FLUSH_HOOKS)."""

    async def recompute(self, cur: psycopg.AsyncCursor[Any]) -> None:
        _dirty.pop(cur.connection, None)  # marks left by the load's pages: everything is recounted below
        for table in ("global_counter", "artist_counter", "track_counter"):
            await cur.execute(f"DELETE FROM {table}")
        await cur.execute("SELECT uri, did FROM track")
        rows = await cur.fetchall()
        mark_tracks(cur, [r[0] for r in rows])
        mark_artists(cur, {r[1] for r in rows})
        await settle(cur)

    async def before(self, cur: psycopg.AsyncCursor[Any], changes: Changes) -> None:
        return None

    async def after(self, cur: psycopg.AsyncCursor[Any], changes: Changes, token: None) -> None:
        puts, deleted = changes.get(TRACK, ([], []))
        # A track write moves its plays only through the relinks it caused, which reported themselves.
        mark_tracks(cur, [p.event.uri for p in puts] + deleted, plays=False)
        await settle(cur)
