"""Counters (subject_count, track_counter, artist_counter, global_counter) equal a from-scratch count of the projected rows
after any sequence of creates, updates, deletes, plays, account changes, duplicates and absurd input —
folded by the real projector into real Postgres, live in random step sizes and by a rebuild."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db.connect import connect
from core.db.schema import PROJECTION_TABLES
from core.events import RecordEvent, RepoEvent
from ingester.eventlog.append import append_batch
from ingester.projection.digest import digest
from ingester.projection.rebuild import rebuild
from ingester.projection.runner import Projector
from tests.ingester import events as ev
from tests.property.test_convergence import tid

DIDS = ("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "did:plc:cccccccccccccccccccccccc")
RKEYS = ("3kaaaaaaaaa22", "3kbbbbbbbbb22", "3kccccccccc22")
TITLES = ("a", "b")
PLAY = "fm.teal.feed.play"
Event = RecordEvent | RepoEvent
INT64_MAX = 2**63 - 1

# The counters' rules written out again, the slow way: every row counted from scratch.
_INACTIVE = "EXISTS (SELECT 1 FROM actor a WHERE a.did = {} AND NOT a.active)"
_HIDE = "ARRAY['!takedown', '!hide', '!suspend', 'copyright-violation']::text[]"
SCRATCH_TRACKS = f"""
SELECT t.uri, t.did,
       (SELECT count(*) FROM play p WHERE p.track_uri = t.uri AND NOT {_INACTIVE.format('p.did')}),
       (SELECT count(DISTINCT l.did) FROM "like" l WHERE l.subject_uri = t.uri AND NOT {_INACTIVE.format('l.did')}),
       (SELECT count(*) FROM comment c WHERE c.subject_uri = t.uri AND NOT {_INACTIVE.format('c.did')}),
       least(greatest(coalesce(t.duration, 0), 0), 86400), NOT (t.self_labels ?| {_HIDE})
FROM track t ORDER BY 1"""
SCRATCH_SUBJECTS = f"""
SELECT uri, sum(likes), sum(comments) FROM (
    SELECT l.subject_uri AS uri, count(DISTINCT l.did) AS likes, 0 AS comments FROM "like" l
    WHERE NOT {_INACTIVE.format('l.did')} GROUP BY 1
    UNION ALL
    SELECT c.subject_uri, 0, count(*) FROM comment c WHERE NOT {_INACTIVE.format('c.did')} GROUP BY 1
) s GROUP BY uri HAVING sum(likes) > 0 OR sum(comments) > 0 ORDER BY 1"""
SCRATCH_ARTISTS = f"""
SELECT s.did, count(*), sum(least(greatest(coalesce(t.duration, 0), 0), 86400)), sum(s.plays), sum(s.likes),
       sum(s.comments), NOT {_INACTIVE.format('s.did')}
FROM ({SCRATCH_TRACKS}) s(uri, did, plays, likes, comments, duration_s, counted) JOIN track t ON t.uri = s.uri
WHERE NOT (t.self_labels ?| {_HIDE}) GROUP BY s.did ORDER BY 1"""
SCRATCH_GLOBAL = f"""
SELECT sum(tracks), count(*), sum(duration_s), sum(plays), sum(likes), sum(comments)
FROM ({SCRATCH_ARTISTS}) a(did, tracks, duration_s, plays, likes, comments, counted) WHERE counted
HAVING count(*) > 0"""


async def rows(conn: psycopg.AsyncConnection, sql: str) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql)
        out = [tuple(int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in r)
               for r in await cur.fetchall()]
    await conn.commit()
    return out


async def assert_counters_match(conn: psycopg.AsyncConnection) -> None:
    assert await rows(conn, "SELECT subject_uri, like_count, comment_count FROM subject_count ORDER BY 1") == \
        await rows(conn, SCRATCH_SUBJECTS)
    assert await rows(conn, "SELECT uri, did, plays, likes, comments, duration_s, counted FROM track_counter "
                            "ORDER BY 1") == await rows(conn, SCRATCH_TRACKS)
    assert await rows(conn, "SELECT did, tracks, duration_s, plays, likes, comments, counted FROM artist_counter "
                            "ORDER BY 1") == await rows(conn, SCRATCH_ARTISTS)
    assert await rows(conn, "SELECT tracks, artists, duration_s, plays, likes, comments FROM global_counter") == \
        await rows(conn, SCRATCH_GLOBAL)


def play(subject: str | None, title: str) -> dict[str, Any]:
    r: dict[str, Any] = {"$type": PLAY, "trackName": title, "artists": [{"artistName": "artist"}],
                         "musicServiceUri": "https://plyr.fm", "playedTime": "2026-11-20T10:00:00Z"}
    if subject:
        r["originUri"] = subject
    return r


@st.composite
def repo_stream(draw: st.DrawFn, repo: int) -> list[Event]:
    did = DIDS[repo]
    out: list[Event] = [replace(ev.identity(did, f"user{repo}.test"), source_seq=repo * 1000)]
    for i in range(draw(st.integers(1, 16))):
        rev = tid(repo * 100 + i)
        rkey = draw(st.sampled_from(RKEYS))
        other = draw(st.sampled_from(DIDS))
        subject = f"at://{other}/fm.plyr.track/{draw(st.sampled_from(RKEYS))}"
        kind = draw(st.sampled_from(["track", "track", "like", "like", "comment", "play", "play", "delete",
                                     "account"]))
        if kind == "account":
            active = draw(st.booleans())
            status = None if active else draw(st.sampled_from(["deactivated", "takendown", "deleted"]))
            out.append(replace(ev.account(did, active, status), source_seq=repo * 1000 + i + 1))
            continue
        if kind == "track":
            extra: dict[str, Any] = {"duration": draw(st.sampled_from([None, -5, 0, 180, 90_000, INT64_MAX]))}
            if draw(st.integers(0, 4)) == 0:
                extra["labels"] = {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "!hide"}]}
            record, collection = ev.track(draw(st.sampled_from(TITLES)), **extra), "fm.plyr.track"
        elif kind == "like":
            record, collection = ev.like(subject), "fm.plyr.like"
        elif kind == "comment":
            record, collection = ev.comment(subject), "fm.plyr.comment"
        elif kind == "play":  # by URI, or by name (exactly one match links; two are ambiguous)
            record, collection = play(subject if draw(st.booleans()) else None, draw(st.sampled_from(TITLES))), PLAY
        else:
            record, collection = None, draw(st.sampled_from(["fm.plyr.track", "fm.plyr.like", "fm.plyr.comment",
                                                              PLAY]))
        action = "update" if record is not None and draw(st.integers(0, 3)) == 0 else "create"
        out.append(ev.delete(did, collection, rkey, rev) if record is None
                   else ev.put(did, collection, rkey, rev, record, action=action, cid=f"bafy{rev}"))
    return out


@st.composite
def deliveries(draw: st.DrawFn) -> list[Event]:
    streams = [draw(repo_stream(i)) for i in range(len(DIDS))]
    positions = [0] * len(streams)
    delivered: list[Event] = []
    while any(p < len(s) for p, s in zip(positions, streams, strict=True)):
        i = draw(st.sampled_from([k for k, s in enumerate(streams) if positions[k] < len(s)]))
        delivered.append(streams[i][positions[i]])
        positions[i] += 1
        if draw(st.integers(0, 4)) == 0:  # redelivered from another host
            again = draw(st.sampled_from(delivered))
            delivered.append(replace(again, source="relay-2") if isinstance(again, RecordEvent) else again)
    return delivered


async def _reset(conn: psycopg.AsyncConnection) -> None:
    tables = [f'"{t.name}"' for t, _ in PROJECTION_TABLES]
    await conn.execute("TRUNCATE record_event, repo_event, projection_cursor, repo_state, source_cursor, "
                       + ", ".join(tables))
    await conn.commit()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(events=deliveries(), page=st.integers(1, 9), cut=st.integers(0, 60))
def test_counters_equal_a_count_from_scratch(db_url: str, events: list[Event], page: int, cut: int) -> None:
    async def run() -> None:
        async with await connect(db_url) as conn:
            await _reset(conn)
            projector = Projector(batch_size=page)
            for batch in (events[:cut], events[cut:]):
                if batch:
                    await append_batch(conn, batch)
                    await projector.catch_up(conn)
                    await conn.commit()
                    await assert_counters_match(conn)
            live = await digest(conn)
            await conn.commit()
        await rebuild(db_url, show_progress=False)
        async with await connect(db_url) as conn:
            assert await digest(conn) == live
            await assert_counters_match(conn)

    asyncio.run(run())
