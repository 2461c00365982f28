"""fm.teal.feed.play / fm.teal.alpha.feed.play → `play`; fm.teal(.alpha).actor.status → `actor_status`.

Plays are written with `link = 'unmatched'`; `PlayLinker` then links them to plyr tracks at the end
of the same flush (see `linking.py` for the rule), so the link is a function of the projections'
final state and not of the order in which tracks and plays arrived.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingester.projection import counters
from ingester.projection.base import Put
from ingester.projection.linking import relink
from ingester.projection.teal import (
    artist_names,
    music_service,
    origin,
    parse_datetime,
    plyr_origin,
    subject_track,
)
from ingester.projection.writes import by_freshness, delete_keys, upsert_rows

PLAY_COLUMNS = (
    "uri", "did", "collection", "rkey", "cid", "track_name", "artists", "release_name", "duration",
    "played_at", "origin_uri", "music_service", "client_agent", "isrc", "recording_mbid", "plyr_origin",
    "subject_uri", "track_uri", "link", "indexed_at",
)
PLAY_TYPES = (
    "text", "text", "text", "text", "text", "text", "jsonb", "text", "int8",
    "timestamptz", "text", "text", "text", "text", "text", "bool",
    "text", "text", "text", "timestamptz",
)
STATUS_COLUMNS = (
    "did", "collection", "uri", "cid", "time", "expiry", "track_name", "artists", "item", "indexed_at",
)
STATUS_TYPES = ("text", "text", "text", "text", "timestamptz", "timestamptz", "text", "jsonb", "jsonb",
                "timestamptz")
STATUS_DEFAULT_TTL = timedelta(minutes=10)  # lexicon: "default to 10 minutes after the start time"


def _str(r: dict[str, Any], key: str) -> str | None:
    value = r.get(key)
    return value if isinstance(value, str) else None


def play_row(put: Put) -> tuple[Any, ...]:
    e = put.event
    r = e.record or {}
    duration = r.get("duration")
    return (
        e.uri, e.did, e.collection, e.rkey, e.cid, r["trackName"], Jsonb(artist_names(r)), _str(r, "releaseName"),
        duration if isinstance(duration, int) and not isinstance(duration, bool) else None,
        parse_datetime(r.get("playedTime")) or put.created_at, origin(r), music_service(r),
        _str(r, "submissionClientAgent"), _str(r, "isrc"), _str(r, "recordingMbId"), plyr_origin(r),
        subject_track(r), None, "unmatched", put.created_at,
    )


def status_row(put: Put) -> tuple[Any, ...] | None:
    e = put.event
    r = e.record or {}
    item = r.get("item")
    time = parse_datetime(r.get("time"))
    if not isinstance(item, dict) or time is None:
        return None
    expiry = parse_datetime(r.get("expiry")) or time + STATUS_DEFAULT_TTL
    return (e.did, e.collection, e.uri, e.cid, time, expiry, item.get("trackName", ""),
            Jsonb(artist_names(item)), Jsonb(item), put.created_at)


class PlayProjector:
    def __init__(self, collection: str) -> None:
        self.collection = collection

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        # The tracks these plays counted for until now lose them (an upsert writes the play unlinked; the relink
        # that follows links it again, and its track gains it).
        await cur.execute("SELECT track_uri, did FROM play WHERE uri = ANY(%s) AND track_uri IS NOT NULL",
                          (deleted_uris + [p.event.uri for p in puts],))
        counters.mark_links(cur, [(r[0], None, r[1]) for r in await cur.fetchall()])
        await delete_keys(cur, "play", "uri", deleted_uris)
        rows, fresh = by_freshness(puts, play_row)
        await upsert_rows(cur, "play", PLAY_COLUMNS, PLAY_TYPES, rows, ("uri",), keep=("indexed_at",), fresh=fresh)

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        await cur.execute("DELETE FROM play WHERE did = %s RETURNING track_uri", (did,))
        counters.mark_tracks(cur, {r[0] for r in await cur.fetchall() if r[0]})
        # The account's tracks are gone (tracks purge first): plays linked to them, or ambiguous
        # because of them, are judged again.
        await relink(cur, purged_did=did)


class StatusProjector:
    def __init__(self, collection: str) -> None:
        self.collection = collection

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        judged = [(p, status_row(p)) for p in puts]
        # A status we cannot read (no parseable time) replaces, rather than leaves, the previous one.
        unreadable = [p.event.uri for p, row in judged if row is None]
        await delete_keys(cur, "actor_status", "uri", [*deleted_uris, *unreadable])
        rows = [row for _, row in judged if row is not None]
        await upsert_rows(cur, "actor_status", STATUS_COLUMNS, STATUS_TYPES, rows, ("did", "collection"),
                          keep=("indexed_at",))

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        await cur.execute("DELETE FROM actor_status WHERE did = %s", (did,))
