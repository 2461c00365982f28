"""Jetstream v1 and v2 against a faithful fake Jetstream that follows the real local PDS's firehose.

(d) of issue #6: the same world, written to the real PDS, reaches the same projection content digest
via the firehose and via Jetstream v1 and v2 (PROJECT_UNVERIFIED on). Plus resume without loss or
duplicates, and bad frames / CID mismatches logged, never projected, never stalling the stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import REGISTRY

from ingester.projection.digest import Digest
from tests.e2e.conftest import RunningIngester, ingester_settings, wav_bytes
from tests.e2e.jetstream_kit import (  # noqa: F401  (fixtures)
    content_digest,
    explain,
    jetstream,
    new_db,
    rows,
    start_jetstream_ingester,
)
from tests.e2e.test_ingest_localnet import NOW, handle, track
from tests.jetstream_fake.server import FakeJetstream
from tests.jetstream_fake.wire import v2_json
from tests.localnet.peer import Account, Localnet, Xrpc


async def until(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last is True:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: last saw {last!r}")


async def projected(db_url: str, uri: str) -> bool:
    return bool(await rows(db_url, "SELECT 1 FROM track WHERE uri = %s", uri))


async def handle_of(db_url: str, did: str, expected: str) -> bool:
    return await rows(db_url, "SELECT handle FROM actor WHERE did = %s", did) == [(expected,)]


async def write_world(xrpc: Xrpc, seen: Callable[[str, str], Awaitable[None]]) -> tuple[list[Account], str]:
    """Every collection, updates, deletes, a multi-op commit, a blob, identity and account changes.

    `seen(did, handle)` waits until every ingester verified a handle change. Without it the world races itself:
    an ingester that verifies carol's new handle after her account is deleted (a moment later) is told the handle
    no longer resolves and rightly logs `handle.invalid`, one that was quicker logs the handle. Seen in CI."""
    alice, bob, carol = [await xrpc.create_account(handle(p)) for p in ("alice", "bob", "carol")]
    blob = await xrpc.upload_blob(alice, wav_bytes(), "audio/wav")
    t1 = await xrpc.create(alice, "fm.plyr.track", track("First", audioBlob=blob))
    t1_rkey = t1["uri"].rsplit("/", 1)[1]
    t2 = await xrpc.create(alice, "fm.plyr.track", track("Second", audioUrl="https://audio.plyr.fm/a.mp3"))
    await xrpc.put(alice, "fm.plyr.track", t1_rkey, track("First (remaster)", audioBlob=blob, duration=3))
    await xrpc.create(bob, "fm.plyr.like", {"$type": "fm.plyr.like", "createdAt": NOW,
                                            "subject": {"uri": t1["uri"], "cid": t1["cid"]}})
    c1 = await xrpc.create(bob, "fm.plyr.comment", {
        "$type": "fm.plyr.comment", "subject": {"uri": t1["uri"], "cid": t1["cid"]}, "text": "the drop",
        "timestampMs": 1000, "createdAt": NOW})
    await xrpc.put(alice, "fm.plyr.actor.profile", "self",
                   {"$type": "fm.plyr.actor.profile", "bio": "I make songs", "createdAt": NOW})
    await xrpc.create(alice, "fm.plyr.list", {
        "$type": "fm.plyr.list", "name": "Debut", "listType": "album", "createdAt": NOW,
        "items": [{"subject": {"uri": t["uri"], "cid": t["cid"]}} for t in (t2, t1)]})
    await xrpc.create(alice, "fm.plyr.track", track("x" * 300, audioUrl="https://a.example/x.mp3"))  # rejected
    await xrpc.apply_writes(alice, [
        {"$type": "com.atproto.repo.applyWrites#create", "collection": "fm.plyr.track", "rkey": "3kzzzzzzzzz22",
         "value": track("Batch A", audioUrl="https://audio.plyr.fm/b.mp3")},
        {"$type": "com.atproto.repo.applyWrites#update", "collection": "fm.plyr.track",
         "rkey": t2["uri"].rsplit("/", 1)[1], "value": track("Second (edit)", audioUrl="https://audio.plyr.fm/a.mp3")},
        {"$type": "com.atproto.repo.applyWrites#delete", "collection": "fm.plyr.track", "rkey": t1_rkey},
    ])
    await xrpc.delete(bob, "fm.plyr.comment", c1["uri"].rsplit("/", 1)[1])
    await xrpc.create(carol, "fm.plyr.track", track("Hers", audioUrl="https://audio.plyr.fm/c.mp3"))
    caz = handle("caz")
    await xrpc.call("com.atproto.identity.updateHandle", {"handle": caz}, carol)
    await seen(carol.did, caz)
    await xrpc.call("com.atproto.server.deactivateAccount", {}, bob)
    await xrpc.call("com.atproto.server.activateAccount", None, bob)
    await xrpc.call("com.atproto.admin.deleteAccount", {"did": carol.did}, admin=True)
    last = await xrpc.create(alice, "fm.plyr.track", track("Marker", audioUrl="https://audio.plyr.fm/z.mp3"))
    return [alice, bob, carol], last["uri"]


async def test_same_digest_via_firehose_jetstream_v1_and_v2(
        xrpc: Xrpc, localnet: Localnet, jetstream: FakeJetstream, db_url: str, new_db: Any) -> None:  # noqa: F811
    firehose = RunningIngester(ingester_settings(db_url, localnet), db_url)
    await firehose.start()
    dbs = {"v1": new_db(), "v2": new_db()}
    followers = [await start_jetstream_ingester(url, localnet, jetstream, v) for v, url in dbs.items()]
    try:
        async def seen(did: str, new_handle: str) -> None:
            for url in (db_url, *dbs.values()):
                await until(lambda url=url: handle_of(url, did, new_handle), f"{new_handle} verified in {url}")

        accounts, marker = await write_world(xrpc, seen)
        for url in (db_url, *dbs.values()):
            await until(lambda url=url: projected(url, marker), f"marker in {url}")
    finally:
        for running in (firehose, *followers):
            await running.stop()

    digests: dict[str, Digest] = {"firehose": await content_digest(db_url)}
    for v, url in dbs.items():
        digests[v] = await content_digest(url)
    if not digests["firehose"].sha256 == digests["v1"].sha256 == digests["v2"].sha256:
        raise AssertionError(await explain({"firehose": db_url, **dbs}, digests))
    tables = {t.table: t.rows for t in digests["firehose"].tables}
    assert tables["track"] == 3 and tables["list_item"] == 2 and tables["actor"] == 3
    for v, url in dbs.items():
        # Jetstream rows are unverified by nature (a #sync resyncs the repo from getRepo, verified), and
        # lexicon-rejected records are logged as such.
        assert await rows(url, "SELECT DISTINCT verified FROM record_event WHERE source LIKE 'jetstream%%'") == [
            (False,)]
        assert await rows(url, "SELECT count(*) FROM record_event WHERE rejected LIKE 'title%%'") == [(1,)]
        sources = {r[0] for r in await rows(url, "SELECT DISTINCT source FROM record_event")}
        assert any(src.startswith(f"jetstream-{v}:") for src in sources) and sources <= {
            *(src for src in sources if src.startswith(f"jetstream-{v}:")), "backfill"}
    # v2 negotiated dict-zstd compression, v1 asked with wantedCollections
    assert any("zstdDictionary=" in p and "collections=fm.plyr.*" in p for p in jetstream.requests)
    assert any(p.startswith("/subscribe?wantedCollections=fm.plyr.*") for p in jetstream.requests)
    assert accounts


async def test_resume_from_committed_cursor_without_loss_or_duplicates(
        xrpc: Xrpc, localnet: Localnet, jetstream: FakeJetstream, new_db: Any) -> None:  # noqa: F811
    dbs = {"v1": new_db(), "v2": new_db()}
    followers = {v: await start_jetstream_ingester(url, localnet, jetstream, v) for v, url in dbs.items()}
    dave = await xrpc.create_account(handle("dave"))
    written: list[str] = []

    async def write(n: int) -> None:
        for _ in range(n):
            i = len(written)
            rec = await xrpc.create(dave, "fm.plyr.track", track(f"T{i}", audioUrl=f"https://audio.plyr.fm/{i}.mp3"))
            written.append(rec["uri"])

    async def logged() -> bool:
        return all([await projected(url, written[-1]) for url in dbs.values()])

    async def resumed(n: int) -> bool:
        return sum("cursor=" in p for p in jetstream.requests) >= n

    try:
        await write(3)
        await until(logged, "first writes")
        await jetstream.drop_connections()  # a network cut: reconnect from the committed cursor
        await write(3)  # while the sources are down or reconnecting
        await until(lambda: resumed(2), "both sources resumed after the cut")
        await until(logged, "writes during the cut")
        for running in followers.values():  # a restart: the cursor is read back from source_cursor
            await running.stop()
        await write(3)
        for running in followers.values():
            await running.start()
        await until(lambda: resumed(4), "both sources resumed after the restart")
        await jetstream.drop_connections()
        await write(3)
        await until(logged, "every write")
        for url in dbs.values():
            assert await rows(url, "SELECT count(*), count(DISTINCT (rkey, rev)) FROM record_event WHERE did = %s",
                              dave.did) == [(12, 12)]
            assert await rows(url, "SELECT count(*) FROM track WHERE did = %s", dave.did) == [(12,)]
    finally:
        for running in followers.values():
            await running.stop()


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_bad_frames_and_cid_mismatch_are_logged_never_projected(
        xrpc: Xrpc, localnet: Localnet, jetstream: FakeJetstream, new_db: Any) -> None:  # noqa: F811
    dbs = {"v1": new_db(), "v2": new_db()}
    followers = {v: await start_jetstream_ingester(url, localnet, jetstream, v) for v, url in dbs.items()}
    erin = await xrpc.create_account(handle("erin"))
    good = await xrpc.create(erin, "fm.plyr.track", track("Genuine", audioUrl="https://audio.plyr.fm/g.mp3"))
    await until(lambda: all_projected(dbs, good["uri"]), "genuine record")
    errors_before = {v: _metric("ingest_frame_errors_total", source=f.ingester.sources[0].name)
                     for v, f in followers.items()}
    # A record whose JSON was tampered with on the way: the CID no longer matches.
    ev = next(e for e in reversed(jetstream.events) if e.kind == "commit" and e.v2 and "Genuine" in e.v2)
    forged = json.loads(ev.v2)["payload"]
    forged_v1 = json.loads(ev.v1)
    rkey = "3kaaaaaaaaa22"
    for body in (forged, forged_v1["commit"]):
        body["rkey"] = rkey
        body["record"]["title"] = "Forged"
    # a position of its own (the third injected event): at the genuine event's, it would be a dropped replay
    forged["seq"], forged_v1["time_us"] = jetstream.next_seq + 2, time.time_ns() // 1000
    await jetstream.inject(v1="{not json", v2='{"$type":"message","payload":')
    await jetstream.inject(v1=json.dumps({**forged_v1, "time_us": 2**70}), v2=json.dumps({"$type": "message"}))
    await jetstream.inject(v1=json.dumps(forged_v1), v2=json.dumps({"$type": "message", "payload": forged}),
                           did=erin.did)
    after = await xrpc.create(erin, "fm.plyr.track", track("After", audioUrl="https://audio.plyr.fm/h.mp3"))
    try:
        await until(lambda: all_projected(dbs, after["uri"]), "records after the bad frames")
        for v, url in dbs.items():
            logged = await rows(url, "SELECT payload->>'reason', payload->'record'->>'title' FROM repo_event "
                                     "WHERE kind = 'forged' AND payload->>'path' = %s", f"fm.plyr.track/{rkey}")
            assert len(logged) == 1 and logged[0][0].startswith("cid mismatch: event says "), logged
            assert logged[0][1] == "Forged"
            assert await rows(url, "SELECT count(*) FROM track WHERE rkey = %s", rkey) == [(0,)]
            source = followers[v].ingester.sources[0].name  # type: ignore[union-attr]
            assert _metric("ingest_frame_errors_total", source=source) - errors_before[v] == 2
            cursor = (await rows(url, "SELECT cursor FROM source_cursor WHERE source = %s", source))[0][0]
            last = jetstream.events[-1]
            assert cursor == (last.seq if v == "v2" else last.time_us)
    finally:
        for running in followers.values():
            await running.stop()


async def all_projected(dbs: dict[str, str], uri: str) -> bool:
    return all([await projected(url, uri) for url in dbs.values()])


def test_fake_wire_shapes() -> None:
    """The fake's v2 frame is the lexicon's: message envelope, payload $type, six-digit µs time."""
    from tests.jetstream_fake.wire import Upstream

    up = Upstream("commit", "did:plc:x", "fm.plyr.like", commit={
        "rev": "3l3qo2vutsw2b", "operation": "delete", "collection": "fm.plyr.like", "rkey": "3l3qo2vuowo2b"})
    frame = json.loads(v2_json(up, 1725911162329308, 12345))
    assert frame == {"$type": "message", "payload": {
        "$type": "network.bsky.jetstream.subscribeEvents#commit", "seq": 12345, "did": "did:plc:x",
        "time": "2024-09-09T19:46:02.329308Z", "rev": "3l3qo2vutsw2b", "operation": "delete",
        "collection": "fm.plyr.like", "rkey": "3l3qo2vuowo2b"}}
