"""The outbound stream against a real Postgres and a real uvicorn server: paging, replay-to-live
cutover, filters, cursor errors, slow consumers and hydration."""

from __future__ import annotations

import asyncio
import base64
import os
import random
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from appview.stream import StreamConfig
from appview.stream.hub import Subscription
from appview.stream.params import EventFilter
from core.db.connect import connect
from core.events import RecordEvent, RepoEvent
from ingester.eventlog.append import append_batch
from tests.appview.stream_kit import read_frames, read_until_closed, serve, stream_app, subscribe
from tests.ingester import events as ev

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid(n: int) -> str:
    out = ""
    for _ in range(11):
        out = ALPHABET[n % 32] + out
        n //= 32
    return "3k" + out


def rejected(did: str, rkey: str, rev: str) -> RecordEvent:
    e = ev.put(did, "fm.plyr.track", rkey, rev, {"$type": "fm.plyr.track", "title": "x" * 400})
    return RecordEvent(**{**{f: getattr(e, f) for f in e.__dataclass_fields__}, "rejected": "title: too long"})


def mixed_batch(i: int) -> list[RecordEvent | RepoEvent]:
    """A batch touching two repos, three collections, a repo event and (sometimes) a rejected record."""
    out: list[RecordEvent | RepoEvent] = [
        ev.put(A, "fm.plyr.track", f"t{i}", tid(10 * i), ev.track(f"song {i}")),
        ev.put(B, "fm.plyr.like", f"l{i}", tid(10 * i + 1), ev.like(f"at://{A}/fm.plyr.track/t{i}")),
        ev.put(A, "fm.plyr.actor.profile", "self", tid(10 * i + 2), ev.profile(f"bio {i}"), action="update"),
    ]
    if i % 3 == 0:
        out.append(ev.identity(B, f"bob{i}.test"))
    if i % 4 == 1:
        out.append(rejected(A, f"bad{i}", tid(10 * i + 3)))
    if i % 5 == 2:
        out.append(ev.delete(A, "fm.plyr.track", f"t{i - 1}", tid(10 * i + 4)))
    return out


async def append(db_url: str, batches: list[list[RecordEvent | RepoEvent]]) -> None:
    async with await connect(db_url) as conn:
        for batch in batches:
            await append_batch(conn, batch)


async def log_truth(db_url: str) -> list[tuple[Any, ...]]:
    """(seq, kind, did, collection, rejected) of every log event, in seq order."""
    async with await connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT seq, 'commit', did, collection, rejected IS NOT NULL FROM record_event"
            " UNION ALL SELECT seq, kind, did, NULL, false FROM repo_event ORDER BY 1")
        return list(await cur.fetchall())


def key(frame: dict[str, Any]) -> tuple[Any, ...]:
    commit = frame.get("commit")
    return (frame["seq"], frame["kind"], frame["did"], commit and commit["collection"],
            bool(commit and "rejected" in commit))


def expected(truth: list[tuple[Any, ...]], f: EventFilter, after: int = 0) -> list[tuple[Any, ...]]:
    return [t for t in truth if t[0] > after and (
        f.matches_commit(t[2], t[3], t[4]) if t[1] == "commit" else f.matches_repo(t[2], t[1]))]


@pytest.fixture
async def http(db_url: str) -> Any:
    app = stream_app(db_url)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield client


async def page_all(http: httpx.AsyncClient, limit: int, **params: Any) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    cursor = "0"
    while True:
        r = await http.get("/xrpc/fm.plyr.sync.getEvents", params={**params, "cursor": cursor, "limit": limit})
        assert r.status_code == 200, r.text
        body = r.json()
        frames += body["events"]
        if body["cursor"] == cursor and not body["events"]:
            return frames
        cursor = body["cursor"]


async def test_get_events_pages_the_log_in_order(db_url: str, http: httpx.AsyncClient) -> None:
    await append(db_url, [mixed_batch(i) for i in range(12)])
    truth = await log_truth(db_url)
    for limit in (1, 3, 7, 1000):
        assert [key(f) for f in await page_all(http, limit)] == expected(truth, EventFilter())
    everything = await page_all(http, 5, includeRejected="true")
    assert [key(f) for f in everything] == expected(truth, EventFilter(include_rejected=True))
    assert any("rejected" in f["commit"] for f in everything if f["kind"] == "commit")
    first = everything[0]
    assert first["commit"]["record"]["title"] == "song 0" and first["commit"]["verified"] is True
    assert first["source"] == "test" and first["time"].endswith("Z") and first["time_us"] > 0
    deletes = [f for f in everything if f["kind"] == "commit" and f["commit"]["operation"] == "delete"]
    assert deletes and all("record" not in f["commit"] and "cid" not in f["commit"] for f in deletes)
    identity = next(f for f in everything if f["kind"] == "identity")
    assert identity["identity"]["handle"].startswith("bob")


@pytest.mark.parametrize("params", [
    {"collections": "fm.plyr.track"},
    {"collections": ["fm.plyr.like", "fm.plyr.actor.*"]},
    {"collections": "fm.plyr.*", "dids": A},
    {"dids": B},
    {"kinds": ["identity"]},
    {"kinds": ["commit"], "collections": "fm.plyr.track", "includeRejected": "true"},
    {"collections": "fm.teal.*"},
])
async def test_filters_deliver_exactly_the_matching_subset(db_url: str, http: httpx.AsyncClient,
                                                         params: dict[str, Any]) -> None:
    await append(db_url, [mixed_batch(i) for i in range(9)])
    truth = await log_truth(db_url)
    from starlette.datastructures import QueryParams

    from appview.stream.params import parse_filter
    f = parse_filter(QueryParams(list(httpx.QueryParams(params).multi_items())))
    got = [key(x) for x in await page_all(http, 4, **params)]
    assert got == expected(truth, f)


async def test_get_events_errors_are_xrpc_400s(db_url: str, http: httpx.AsyncClient) -> None:
    await append(db_url, [mixed_batch(0)])
    cases = [({"cursor": "abc"}, "InvalidRequest"), ({"cursor": "-1"}, "InvalidRequest"),
             ({"limit": "0"}, "InvalidRequest"), ({"limit": "1001"}, "InvalidRequest"),
             ({"collections": "fm.plyr.tr*"}, "InvalidRequest"), ({"collections": "*"}, "InvalidRequest"),
             ({"dids": "bob"}, "InvalidRequest"), ({"wantedCollections": "fm.plyr.track"}, "InvalidRequest"),
             ({"kinds": "identity", "collections": "fm.plyr.track"}, "InvalidRequest"),
             ({"hydrate": "true"}, "InvalidRequest"),  # no hydrator configured
             ({"cursor": "999999"}, "FutureCursor"), ({"cursor": str(2**63)}, "InvalidRequest")]
    for params, error in cases:
        r = await http.get("/xrpc/fm.plyr.sync.getEvents", params=params)
        assert (r.status_code, r.json()["error"]) == (400, error), (params, r.text)
        assert r.json()["message"]


async def test_outdated_cursor_is_an_error_never_a_jump(db_url: str, http: httpx.AsyncClient) -> None:
    await append(db_url, [mixed_batch(i) for i in range(4)])
    truth = await log_truth(db_url)
    dropped = truth[5][0]
    async with await connect(db_url, autocommit=True) as conn:  # what a retention job does
        await conn.execute("DELETE FROM record_event WHERE seq <= %s", (dropped,))
        await conn.execute("DELETE FROM repo_event WHERE seq <= %s", (dropped,))
        await conn.execute("UPDATE log_retention SET dropped_through = %s", (dropped,))
    r = await http.get("/xrpc/fm.plyr.sync.getEvents", params={"cursor": dropped - 1})
    assert (r.status_code, r.json()["error"], r.json()["oldest"]) == (400, "OutdatedCursor", dropped)
    r = await http.get("/xrpc/fm.plyr.sync.getEvents", params={"cursor": dropped, "includeRejected": "true"})
    assert r.status_code == 200 and r.json()["events"][0]["seq"] == truth[6][0]
    r = await http.get("/xrpc/fm.plyr.sync.getEvents", params={"includeRejected": "true"})  # no cursor: oldest
    assert r.status_code == 200 and r.json()["events"][0]["seq"] == truth[6][0]


async def test_subscribe_replays_then_goes_live_without_gap_or_duplicate(db_url: str) -> None:
    await append(db_url, [mixed_batch(i) for i in range(30)])
    config = StreamConfig(page_size=7)  # many replay pages
    async with serve(stream_app(db_url, config=config)) as base:
        async with subscribe(base, cursor=0, includeRejected="true") as ws:
            first = await read_frames(ws, 10)
            writer = asyncio.create_task(append(db_url, [mixed_batch(i) for i in range(30, 60)]))
            await writer
            truth = await log_truth(db_url)
            rest = await read_frames(ws, len(truth) - 10)
    assert [key(f) for f in first + rest] == expected(truth, EventFilter(include_rejected=True))


async def test_reconnecting_at_random_cursors_sees_every_event_once(db_url: str) -> None:
    rng = random.Random(7)
    await append(db_url, [mixed_batch(i) for i in range(10)])
    seen: list[dict[str, Any]] = []
    async with serve(stream_app(db_url, config=StreamConfig(page_size=5))) as base:
        writer = asyncio.create_task(append(db_url, [mixed_batch(i) for i in range(10, 80)]))
        while not writer.done() or len(seen) < len(expected(await log_truth(db_url), EventFilter())):
            cursor = seen[-1]["seq"] if seen else 0
            if seen and rng.random() < 0.3:  # rewind to a random earlier cursor, then dedup by seq
                cursor = rng.choice(seen)["seq"]
            async with subscribe(base, cursor=cursor) as ws:
                frames = await read_frames(ws, rng.randint(1, 25), timeout=1, strict=False)
            assert [f["seq"] for f in frames] == sorted({f["seq"] for f in frames})
            assert all(f["seq"] > cursor for f in frames)
            seen = [f for f in seen if f["seq"] <= cursor] + frames
        await writer
    assert [key(f) for f in seen] == expected(await log_truth(db_url), EventFilter())


async def test_subscribe_cursor_errors_are_frames_then_close(db_url: str) -> None:
    await append(db_url, [mixed_batch(0)])
    async with serve(stream_app(db_url)) as base:
        for params, error in [({"cursor": "99999"}, "FutureCursor"), ({"cursor": "x"}, "InvalidRequest"),
                              ({"collections": "nope"}, "InvalidRequest"), ({"hydrate": "true"}, "InvalidRequest")]:
            async with subscribe(base, **params) as ws:  # type: ignore[arg-type]
                frames = await read_until_closed(ws)
                assert [f["kind"] for f in frames] == ["error"] and frames[0]["error"] == error
                assert ws.close_code == 1008
        async with await connect(db_url, autocommit=True) as conn:
            await conn.execute("UPDATE log_retention SET dropped_through = 2")
        async with subscribe(base, cursor=1, includeRejected="true") as ws:  # outdated: #info, then the rest
            frames = await read_frames(ws, 2)
            assert frames[0]["kind"] == "info" and frames[0]["name"] == "OutdatedCursor" and frames[0]["oldest"] == 2
            assert frames[1]["seq"] == 3


async def test_no_cursor_starts_at_the_live_head(db_url: str) -> None:
    await append(db_url, [mixed_batch(0)])
    async with serve(stream_app(db_url)) as base:
        async with subscribe(base, collections="fm.plyr.track") as ws:
            await asyncio.sleep(0.2)  # let the handler register before the append (not a timing assertion)
            await append(db_url, [mixed_batch(1)])
            frames = await read_frames(ws, 1)
    assert frames[0]["commit"]["rkey"] == "t1"


async def test_slow_consumer_gets_an_error_frame_and_is_disconnected(db_url: str) -> None:
    config = StreamConfig(max_buffer=50, error_send_timeout=30)
    def big() -> dict[str, str]:  # incompressible, so permessage-deflate cannot hide it
        return {"blob": base64.b64encode(os.urandom(15_000)).decode()}

    async with serve(stream_app(db_url, config=config)) as base:
        async with subscribe(base, rcvbuf=16384) as ws:
            # The consumer reads nothing while 1,000 large events arrive: socket buffers fill, the
            # server's send blocks, the hub's buffer for it overflows.
            for i in range(20):
                await append(db_url, [[ev.put(A, "fm.plyr.track", f"r{i}-{j}", tid(100 * i + j),
                                              ev.track(**big())) for j in range(50)]])
            frames = await read_until_closed(ws, timeout=60)
    assert frames[-1]["kind"] == "error" and frames[-1]["error"] == "ConsumerTooSlow"
    assert 0 < len(frames) - 1 < 1000
    seqs = [f["seq"] for f in frames[:-1]]
    assert seqs == sorted(set(seqs))  # what it did get was in order, without duplicates


async def test_subscription_buffer_is_bounded() -> None:
    sub = Subscription(EventFilter(), max_buffer=3)
    from appview.stream.log import StreamEvent
    events = [StreamEvent(i, A, "identity", None, None, False, {}) for i in range(1, 5)]
    sub.offer(events[:2])
    assert not sub.too_slow.is_set() and len(sub.take()) == 2
    sub.offer(events[2:])
    sub.offer(events[:2])
    assert sub.too_slow.is_set() and not sub.buffer


async def test_hydrate_adds_the_view_from_the_hydrator(db_url: str) -> None:
    calls: list[list[str]] = []

    async def hydrator(conn: psycopg.AsyncConnection, uris: list[str]) -> dict[str, dict[str, Any]]:
        calls.append(uris)
        cur = await conn.execute("SELECT 1")
        await cur.fetchone()
        return {u: {"uri": u, "title": "hydrated"} for u in uris if "/fm.plyr.track/" in u}

    await append(db_url, [mixed_batch(0)])
    async with await connect(db_url, autocommit=True) as conn:  # pretend the projector is current
        await conn.execute("INSERT INTO projection_cursor VALUES ('main', 1000)")
    app = stream_app(db_url, hydrator=hydrator, config=StreamConfig(hydrate_wait=0))
    async with serve(app) as base:
        async with subscribe(base, cursor=0, hydrate="true") as ws:
            frames = await read_frames(ws, 3)
        async with httpx.AsyncClient(base_url=base) as client:
            page = (await client.get("/xrpc/fm.plyr.sync.getEvents", params={"hydrate": "true"})).json()
    track = frames[0]
    assert track["hydrated"] == {"uri": f"at://{A}/fm.plyr.track/t0", "title": "hydrated"}
    assert "hydrated" not in frames[1]  # a like: the hydrator had no view for it (absent, not null)
    assert page["events"][0]["hydrated"]["title"] == "hydrated"
    assert calls and all(u.startswith("at://") for u in calls[0])


async def test_frames_are_json_objects_with_the_documented_fields(db_url: str, http: httpx.AsyncClient) -> None:
    await append(db_url, [mixed_batch(0)])
    raw = (await http.get("/xrpc/fm.plyr.sync.getEvents")).content
    commit = orjson.loads(raw)["events"][0]
    assert set(commit) == {"seq", "did", "time_us", "time", "kind", "source", "commit"}
    assert set(commit["commit"]) == {"rev", "operation", "collection", "rkey", "record", "cid", "verified"}
