"""The outbound stream end to end: the reference PDS keeps writing, our ingester logs it, and a
consumer that keeps disconnecting and reconnecting at random cursors ends with exactly the log."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

from appview.stream.params import EventFilter
from tests.appview.stream_kit import read_frames, serve, stream_app, subscribe
from tests.appview.test_stream import expected, key, log_truth
from tests.e2e.conftest import Query, RunningIngester, eventually
from tests.localnet.peer import Account, Xrpc

NOW = "2026-11-24T12:00:00.000Z"


def track(title: str) -> dict[str, Any]:
    return {"$type": "fm.plyr.track", "title": title, "artist": "Alice", "fileType": "mp3",
            "audioUrl": "https://audio.plyr.fm/a.mp3", "createdAt": NOW}


async def write_a_while(xrpc: Xrpc, alice: Account, bob: Account, rounds: int) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for i in range(rounds):
        t = await xrpc.create(alice, "fm.plyr.track", track(f"song {i}"))
        made.append(t)
        like = await xrpc.create(bob, "fm.plyr.like", {"$type": "fm.plyr.like", "createdAt": NOW,
                                                       "subject": {"uri": t["uri"], "cid": t["cid"]}})
        if i % 3 == 0:
            await xrpc.put(alice, "fm.plyr.track", t["uri"].rsplit("/", 1)[1], track(f"song {i} (edit)"))
        if i % 4 == 1:
            await xrpc.delete(bob, "fm.plyr.like", like["uri"].rsplit("/", 1)[1])
        if i % 5 == 2:
            await xrpc.create(alice, "fm.plyr.track", track("x" * 300))  # rejected: title too long
    return made


async def test_reconnecting_consumer_ends_with_exactly_the_log(xrpc: Xrpc, ingester: RunningIngester, q: Query,
                                                             db_url: str) -> None:
    rng = random.Random(11)
    alice = await xrpc.create_account(f"alice{uuid.uuid4().hex[:6]}.test")
    bob = await xrpc.create_account(f"bob{uuid.uuid4().hex[:6]}.test")
    seen: list[dict[str, Any]] = []
    async with serve(stream_app(db_url)) as base:
        writer = asyncio.create_task(write_a_while(xrpc, alice, bob, 25))
        caught_up = 0
        while caught_up < 2:  # after the writer is done and logged, two quiet reconnects in a row
            cursor = seen[-1]["seq"] if seen else 0
            if seen and rng.random() < 0.25:
                cursor = rng.choice(seen[-10:])["seq"]  # rewind: the consumer lost some progress
            async with subscribe(base, cursor=cursor, includeRejected="true") as ws:
                frames = await read_frames(ws, rng.randint(1, 30), timeout=0.5, strict=False)
            assert all(f["seq"] > cursor for f in frames)
            seen = [f for f in seen if f["seq"] <= cursor] + frames
            if writer.done() and not frames:
                await eventually(q, "SELECT count(*) > 0 FROM record_event WHERE did = %s AND rkey = %s",
                                 [(True,)], alice.did, writer.result()[-1]["uri"].rsplit("/", 1)[1])
                caught_up += 1
        made = writer.result()
        truth = await log_truth(db_url)
        assert [key(f) for f in seen] == expected(truth, EventFilter(include_rejected=True))
        assert any(f["kind"] == "commit" and "rejected" in f["commit"] for f in seen)
        assert {f["kind"] for f in seen} >= {"commit"}

        # What the PDS answered for a write is what the frame carries (consumers can check it).
        first = next(f for f in seen if f["kind"] == "commit" and f["commit"]["operation"] == "create"
                     and f["did"] == alice.did)
        assert first["commit"]["cid"] == made[0]["cid"] and first["commit"]["verified"] is True
        assert f"at://{alice.did}/fm.plyr.track/{first['commit']['rkey']}" == made[0]["uri"]

        # A filtered consumer from the start gets exactly the matching subset.
        params = {"collections": "fm.plyr.like", "dids": bob.did}
        async with subscribe(base, cursor=0, **params) as ws:
            want = expected(truth, EventFilter(collections=frozenset({"fm.plyr.like"}), dids=frozenset({bob.did})))
            likes = await read_frames(ws, len(want))
        assert [key(f) for f in likes] == want
        assert {f["commit"]["operation"] for f in likes if f["kind"] == "commit"} == {"create", "delete"}
