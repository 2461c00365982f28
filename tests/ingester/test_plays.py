"""teal.fm plays: projection, the linking rule and its order independence, reads, rebuild."""

from __future__ import annotations

from typing import Any

import psycopg

from appview.query import plays as q
from ingester.eventlog.append import append_batch
from ingester.projection.digest import digest
from ingester.projection.rebuild import rebuild
from ingester.projection.runner import Projector
from tests.ingester import events as ev

ART = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"  # an artist on plyr
ART2 = "did:plc:cccccccccccccccccccccccc"
FAN = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"  # a listener
TRACK = "fm.plyr.track"
PLAY, ALPHA = "fm.teal.feed.play", "fm.teal.alpha.feed.play"


def play(name: str, artist: str, *, gen: str = "new", when: str = "2026-11-20T10:00:00Z", **extra: Any) -> dict:
    if gen == "new":
        r = {"$type": PLAY, "trackName": name, "artists": [{"artistName": artist}],
             "musicServiceUri": "https://plyr.fm", "originUri": "https://plyr.fm/track/17"}
    else:
        r = {"$type": ALPHA, "trackName": name, "artistNames": [artist], "musicServiceBaseDomain": "plyr.fm",
             "originUrl": "https://plyr.fm/track/17"}
    return {**r, "submissionClientAgent": "plyr.fm/1.0", "playedTime": when, **extra}



async def _rows(conn: psycopg.AsyncConnection, sql: str) -> list[tuple]:
    async with conn.cursor() as cur:
        await cur.execute(sql)
        rows = await cur.fetchall()
    await conn.commit()
    return rows


async def _project(conn: psycopg.AsyncConnection, events: list, batch: int = 5000) -> None:
    await append_batch(conn, events)
    await Projector(batch_size=batch).catch_up(conn)
    await conn.commit()


def _uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


async def test_both_generations_link_by_name_and_count(conn: psycopg.AsyncConnection) -> None:
    t = ev.track("Night Drive", artist="Nova")
    await _project(conn, [
        ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222222a", t),
        ev.put(FAN, PLAY, "3kppppppppp22", "3k2222222222b", play("Night Drive", "Nova")),
        ev.put(FAN, ALPHA, "3kqqqqqqqqq22", "3k2222222223b", play("Night Drive", "Nova", gen="alpha")),
        # not on plyr (spotify): same name, never linked to the plyr upload
        ev.put(FAN, PLAY, "3krrrrrrrrr22", "3k2222222224b", {**play("Night Drive", "Nova"),
               "musicServiceUri": "https://open.spotify.com", "originUri": "https://open.spotify.com/x"}),
    ])
    track_uri = _uri(ART, TRACK, "3kaaaaaaaaa22")
    rows = await _rows(conn, "SELECT collection, origin_uri, music_service, link, track_uri FROM play ORDER BY rkey")
    assert rows == [
        (PLAY, "https://plyr.fm/track/17", "https://plyr.fm", "name", track_uri),
        (ALPHA, "https://plyr.fm/track/17", "plyr.fm", "name", track_uri),
        (PLAY, "https://open.spotify.com/x", "https://open.spotify.com", "unmatched", None),
    ]
    assert await q.play_counts(conn, [track_uri, "at://x/y/z"]) == {track_uri: 2}
    items, cursor = await q.history(conn, FAN, limit=2)
    assert len(items) == 2 and cursor is not None
    rest, end = await q.history(conn, FAN, limit=2, cursor=cursor)
    assert len(rest) == 1 and end is None
    assert {i["uri"] for i in items + rest} == {r[0] for r in await _rows(conn, "SELECT uri FROM play")}


async def test_ambiguous_plays_stay_unlinked_and_uri_links_win(conn: psycopg.AsyncConnection) -> None:
    await _project(conn, [
        ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222222a", ev.track("Intro", artist="Nova")),
        ev.put(ART2, TRACK, "3kbbbbbbbbb22", "3k2222222222c", ev.track("Intro", artist="Nova")),
        ev.put(FAN, PLAY, "3kppppppppp22", "3k2222222222b", play("Intro", "Nova")),
        ev.put(FAN, PLAY, "3kqqqqqqqqq22", "3k2222222223b",
               play("Intro", "Nova", originUri=_uri(ART2, TRACK, "3kbbbbbbbbb22"))),
    ])
    assert await _rows(conn, "SELECT link, track_uri FROM play ORDER BY rkey") == [
        ("ambiguous", None), ("uri", _uri(ART2, TRACK, "3kbbbbbbbbb22"))]
    # One of the two tracks goes away: the ambiguous play now has exactly one match.
    await _project(conn, [ev.delete(ART, TRACK, "3kaaaaaaaaa22", "3k2222222225a")])
    assert await _rows(conn, "SELECT link, track_uri FROM play ORDER BY rkey") == [
        ("name", _uri(ART2, TRACK, "3kbbbbbbbbb22")), ("uri", _uri(ART2, TRACK, "3kbbbbbbbbb22"))]


async def test_link_follows_tracks_whatever_the_order(conn: psycopg.AsyncConnection) -> None:
    # The play arrives before the track, then the track is renamed away, then back.
    await _project(conn, [ev.put(FAN, PLAY, "3kppppppppp22", "3k2222222222b", play("Song", "Nova"))])
    assert await _rows(conn, "SELECT link FROM play") == [("unmatched",)]
    await _project(conn, [ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222222a", ev.track("Song", artist="Nova"))])
    assert await _rows(conn, "SELECT link FROM play") == [("name",)]
    await _project(conn, [ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222223a", ev.track("Other", artist="Nova"),
                                 action="update")])
    assert await _rows(conn, "SELECT link, track_uri FROM play") == [("unmatched", None)]


async def test_account_purge_relinks(conn: psycopg.AsyncConnection) -> None:
    await _project(conn, [
        ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222222a", ev.track("Intro", artist="Nova")),
        ev.put(ART2, TRACK, "3kbbbbbbbbb22", "3k2222222222c", ev.track("Intro", artist="Nova")),
        ev.put(FAN, PLAY, "3kppppppppp22", "3k2222222222b", play("Intro", "Nova")),
    ])
    await _project(conn, [ev.account(ART, False, "deleted")])
    assert await _rows(conn, "SELECT link, track_uri FROM play") == [("name", _uri(ART2, TRACK, "3kbbbbbbbbb22"))]
    await _project(conn, [ev.account(FAN, False, "deleted")])
    assert await _rows(conn, "SELECT count(*) FROM play") == [(0,)]


async def test_status_now_playing_and_tops(conn: psycopg.AsyncConnection) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    status = {"$type": "fm.teal.actor.status", "time": now.isoformat().replace("+00:00", "Z"),
              "expiry": (now + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
              "item": {"trackName": "Song", "artists": [{"artistName": "Nova"}]}}
    stale = {**status, "$type": "fm.teal.alpha.actor.status",
             "time": (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z")}
    stale.pop("expiry")  # default expiry: time + 10 min, long past
    await _project(conn, [
        ev.put(FAN, "fm.teal.actor.status", "self", "3k2222222222b", status),
        ev.put(ART, "fm.teal.alpha.actor.status", "self", "3k2222222222a", stale),
        ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222223a", ev.track("Song", artist="Nova")),
        *[ev.put(FAN, PLAY, f"3kppppppp{i}222", f"3k222222223{i}b", play("Song", "Nova")) for i in range(3)],
        ev.put(FAN, PLAY, "3kqqqqqqqqq22", "3k2222222224b", play("B-side", "Nova", when="2026-11-21T10:00:00Z")),
    ])
    playing = await q.now_playing(conn, FAN)
    assert playing is not None and playing["item"]["trackName"] == "Song"
    assert await q.now_playing(conn, ART) is None
    tops = await q.top_tracks(conn, q.Window(did=FAN))
    assert [(t["trackName"], t["plays"], t.get("track")) for t in tops] == [
        ("Song", 3, _uri(ART, TRACK, "3kaaaaaaaaa22")), ("B-side", 1, None)]
    assert await q.top_artists(conn, q.Window()) == [{"artistName": "Nova", "plays": 4}]
    assert await q.plays_per_day(conn, q.Window(did=FAN)) == [
        {"day": "2026-11-20", "plays": 3}, {"day": "2026-11-21", "plays": 1}]
    await conn.commit()


async def test_rebuild_equals_live_with_links(db_url: str, conn: psycopg.AsyncConnection) -> None:
    await append_batch(conn, [
        ev.put(FAN, PLAY, "3kppppppppp22", "3k2222222222b", play("Song", "Nova")),
        ev.put(FAN, ALPHA, "3kqqqqqqqqq22", "3k2222222223b", play("Intro", "Nova", gen="alpha")),
        ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222222a", ev.track("Song", artist="Nova")),
        ev.put(ART, TRACK, "3kbbbbbbbbb22", "3k2222222223a", ev.track("Intro", artist="Nova")),
        ev.put(ART2, TRACK, "3kccccccccc22", "3k2222222222c", ev.track("Intro", artist="Nova")),
        ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222224a", ev.track("Song 2", artist="Nova"), action="update"),
        ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222225a", ev.track("Song", artist="Nova"), action="update"),
    ])
    await Projector(batch_size=1).catch_up(conn)  # one event per step: the most interleaved live run
    live = await digest(conn)
    await conn.commit()
    assert await _rows(conn, "SELECT link FROM play ORDER BY rkey") == [("name",), ("ambiguous",)]
    await rebuild(db_url, show_progress=False)
    assert await digest(conn) == live
