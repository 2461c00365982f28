"""Counters under hostile and absurd input, through the real projector and the real API: deletes of what
never existed, duplicates, likes of tracks that do not exist (yet), thousands of likes and plays on one
track, int64 durations, accounts going away and coming back — and the migration's backfill agrees."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg

from ingester.eventlog.append import append_batch
from ingester.projection.runner import Projector
from tests.appview.world import client
from tests.ingester import events as ev
from tests.property.test_counters import assert_counters_match, rows

ART = "did:plc:artistaaaaaaaaaaaaaaaaaa"
FAN = "did:plc:fanaaaaaaaaaaaaaaaaaaaaa"
TRACK, LIKE, PLAY = "fm.plyr.track", "fm.plyr.like", "fm.teal.feed.play"
T1 = f"at://{ART}/{TRACK}/3kaaaaaaaaa22"
B32 = "234567abcdefghijklmnopqrstuvwxyz"


def rev(n: int) -> str:
    out = ""
    for _ in range(11):
        out = B32[n % 32] + out
        n //= 32
    return "3k" + out


def play(subject: str) -> dict[str, Any]:
    return {"$type": PLAY, "trackName": "x", "artists": [{"artistName": "artist"}], "originUri": subject,
            "playedTime": "2026-11-20T10:00:00Z"}


async def project(conn: psycopg.AsyncConnection, events: list[Any], batch: int = 5000) -> None:
    await append_batch(conn, events)
    await Projector(batch_size=batch).catch_up(conn)
    await conn.commit()


async def counters(conn: psycopg.AsyncConnection) -> tuple[list[tuple[Any, ...]], ...]:
    return (await rows(conn, "SELECT uri, plays, likes, comments FROM track_counter ORDER BY uri"),
            await rows(conn, "SELECT did, tracks, duration_s, plays, likes, counted FROM artist_counter"),
            await rows(conn, "SELECT tracks, artists, duration_s, plays, likes FROM global_counter"))


async def test_deletes_of_nothing_and_likes_of_nothing(conn: psycopg.AsyncConnection) -> None:
    await project(conn, [
        ev.identity(ART, "artist.test"), ev.identity(FAN, "fan.test"),
        ev.delete(ART, TRACK, "3kaaaaaaaaa22", rev(1)),  # never created
        ev.delete(FAN, LIKE, "3kbbbbbbbbb22", rev(2)),
        ev.delete(FAN, PLAY, "3kccccccccc22", rev(3)),
        ev.put(FAN, LIKE, "3kddddddddd22", rev(4), ev.like(T1)),  # the track does not exist
        ev.put(FAN, PLAY, "3keeeeeeeee22", rev(5), play(T1)),
        ev.put(FAN, LIKE, "3kfffffffff22", rev(6), ev.like("at://did:plc:nobody/fm.plyr.track/x")),
    ])
    assert await counters(conn) == ([], [], [])
    await assert_counters_match(conn)
    # the track arrives after its like and its play: both count at once
    await project(conn, [ev.put(ART, TRACK, "3kaaaaaaaaa22", rev(7), ev.track(duration=200))])
    assert await counters(conn) == ([(T1, 1, 1, 0)], [(ART, 1, 200, 1, 1, True)], [(1, 1, 200, 1, 1)])
    await assert_counters_match(conn)


async def test_duplicates_and_redelivery_count_once(conn: psycopg.AsyncConnection) -> None:
    like = ev.put(FAN, LIKE, "3kddddddddd22", rev(2), ev.like(T1))
    events = [ev.identity(ART, "artist.test"), ev.identity(FAN, "fan.test"),
              ev.put(ART, TRACK, "3kaaaaaaaaa22", rev(1), ev.track(duration=60)), like,
              replace(like, source="relay-2"), replace(like, source="backfill", action="update"),
              ev.put(FAN, LIKE, "3kggggggggg22", rev(3), ev.like(T1)),  # a second like record by the same fan
              ev.put(FAN, PLAY, "3keeeeeeeee22", rev(4), play(T1))]
    await project(conn, events, batch=2)
    await project(conn, events)  # the whole stream again
    assert await counters(conn) == ([(T1, 1, 1, 0)], [(ART, 1, 60, 1, 1, True)], [(1, 1, 60, 1, 1)])
    # an update that moves the like elsewhere, then the track's deletion: everything decrements
    await project(conn, [ev.put(FAN, LIKE, "3kddddddddd22", rev(5), ev.like("at://x/y/z"), action="update"),
                         ev.put(FAN, LIKE, "3kggggggggg22", rev(6), ev.like("at://x/y/z"), action="update")])
    assert (await counters(conn))[0] == [(T1, 1, 0, 0)]
    await project(conn, [ev.delete(ART, TRACK, "3kaaaaaaaaa22", rev(7))])
    assert await counters(conn) == ([], [], [])
    await assert_counters_match(conn)


async def test_huge_counts_and_absurd_durations(db_url: str, conn: psycopg.AsyncConnection) -> None:
    n = 1200
    events: list[Any] = [ev.identity(ART, "artist.test"),
                         ev.put(ART, TRACK, "3kaaaaaaaaa22", rev(1), ev.track(duration=2**63 - 1)),
                         ev.put(ART, TRACK, "3kbbbbbbbbb22", rev(2), ev.track(duration=-(2**63)))]
    for i in range(n):
        fan = f"did:plc:fan{i:021d}"
        events += [ev.put(fan, LIKE, "3kddddddddd22", rev(10), ev.like(T1)),
                   ev.put(fan, PLAY, "3keeeeeeeee22", rev(11), play(T1)),
                   ev.put(fan, PLAY, "3kfffffffff22", rev(12), play(T1))]
    await project(conn, events, batch=997)
    assert await rows(conn, "SELECT tracks, artists, duration_s, plays, likes FROM global_counter") == \
        [(2, 1, 86400, 2 * n, n)]
    await assert_counters_match(conn)
    async with client(db_url) as c:
        assert (await c.get("/stats")).json() == {"total_plays": 2 * n, "total_tracks": 2, "total_artists": 1,
                                                  "total_duration_seconds": 86400}
        assert (await c.get("/tracks/by-uri", params={"uri": T1})).json()["play_count"] == 2 * n
    # the fans' accounts go away and come back: their plays and likes leave and return
    gone = [ev.account(f"did:plc:fan{i:021d}", False, "deactivated") for i in range(0, n, 2)]
    await project(conn, gone)
    assert (await counters(conn))[2] == [(2, 1, 86400, n, n // 2)]
    await project(conn, [ev.account(e.did, True) for e in gone])
    assert (await counters(conn))[2] == [(2, 1, 86400, 2 * n, n)]
    await project(conn, [ev.account(ART, False, "deleted")])
    assert await counters(conn) == ([], [], [])
    await assert_counters_match(conn)


async def test_migration_backfill_equals_the_projector(conn: psycopg.AsyncConnection) -> None:
    from importlib import import_module

    await project(conn, [ev.identity(ART, "artist.test"), ev.identity(FAN, "fan.test"),
                         ev.put(ART, TRACK, "3kaaaaaaaaa22", rev(1), ev.track(duration=90)),
                         ev.put(ART, TRACK, "3kbbbbbbbbb22", rev(2), ev.track(labels={
                             "$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "!hide"}]})),
                         ev.put(FAN, LIKE, "3kddddddddd22", rev(3), ev.like(T1)),
                         ev.put(FAN, PLAY, "3keeeeeeeee22", rev(4), play(T1)),
                         ev.put(FAN, "fm.plyr.comment", "3kccccccccc22", rev(5), ev.comment(T1))])
    live = await counters(conn)
    backfill = import_module("migrations.versions.0017_counters")._BACKFILL
    share = import_module("migrations.versions.0018_track_counter_share")._UPGRADE
    async with conn.cursor() as cur:
        # The tables as 0017 left them, then 0017's backfill and 0018, in migration order.
        await cur.execute("TRUNCATE track_counter, artist_counter, global_counter")
        await cur.execute("ALTER TABLE track_counter DROP COLUMN duration_s, DROP COLUMN counted")
        for stmt in (*backfill, *share):
            await cur.execute(stmt)
    await conn.commit()
    assert await counters(conn) == live
