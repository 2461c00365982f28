"""The real `Ingester` following a hostile relay that splices every kind of bad frame between valid ones.

Asserts what matters to a user: every valid frame after the junk is applied (log and projection), nothing
forged is projected, every junk frame is a recorded reject with its reason (a too-big one costs one reject,
not a reconnect loop), and the cursor ends on the last valid seq. Identity is a `StaticResolver`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from prometheus_client import REGISTRY

from ingester.service import Ingester
from ingester.settings import IngesterSettings
from ingester.sources.firehose import source_name
from tests.e2e.conftest import Query, eventually
from tests.hostile.firehose_server import (
    HostileRelay,
    deep_nesting,
    empty_maps,
    envelope,
    huge_frame,
    identity_with_seq,
    random_bytes,
    seq_of,
    slow_frame,
    truncated,
)
from tests.ingester.framekit import PLC_URL, Net, StaticResolver, like, track

T = "fm.plyr.track/"
R1, R2, R3, R4, RF = (f"{T}3k{c * 9}22" for c in "abcdf")


@asynccontextmanager
async def following(db_url: str, url: str, resolver: StaticResolver) -> AsyncIterator[Ingester]:
    # A relay (listed as one: a relay speaks for every account's #identity/#account), however hostile.
    settings = IngesterSettings(database_url=db_url, firehose_hosts=url, firehose_relays=url, plc_url=PLC_URL,
                                ingest_batch_max=500, labelers="", blob_mirror=False, resync_enabled=False)
    ingester = Ingester(settings, db_url, resolver=resolver)
    stop = asyncio.Event()
    task = asyncio.create_task(ingester.run(stop))
    try:
        yield ingester
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive-replay", "inclusive-replay"])
async def test_every_valid_frame_survives_the_junk(db_url: str, q: Query, inclusive: bool) -> None:
    net = Net()
    alice, bob = net.repo("alice.test"), net.repo("bob.test")
    c1 = alice.commit([("create", R1, track("one"))])
    c2 = bob.commit([("create", "fm.plyr.like/3kbbbbbbbbb22", like(alice.uri(R1)))])
    forged = alice.forged([("create", RF, track("forged"))])  # bad signature, next seq
    c4 = alice.commit([("create", R2, track("two"))])
    ident = bob.identity()
    huge_seq = net.next_seq()  # the 50 MB frame owns a seq of the stream, as every host frame does
    slow = slow_frame(net.next_seq())
    c8 = alice.commit([("create", R3, track("three"))])
    c9 = bob.commit([("create", R4, track("four"))])
    relay = HostileRelay([c1, c2, forged, c4, ident, slow, c8, c9], inclusive=inclusive).at(huge_seq, huge_frame())
    relay.splice(c1, identity_with_seq(2**63), identity_with_seq(2**64), random_bytes(200), truncated(c2))
    relay.splice(c2, deep_nesting(), empty_maps())
    relay.splice(forged, bob.identity(seq=1))  # a valid frame of a tracked repo, seq going backwards
    relay.splice(c4, identity_with_seq(2**63 - 1))  # a seq far ahead: never reaches the cursor
    relay.splice(c8, envelope("#commit", {"seq": 10**6, "repo": 5}))  # malformed, seq ahead: cursor stays

    source = source_name("ws://127.0.0.1")
    async with relay.running():
        source = source_name(relay.url)
        async with following(db_url, relay.url, net.resolver()):
            await eventually(q, "SELECT cursor FROM source_cursor", [(seq_of(c9),)], timeout=30)
            await eventually(q, "SELECT title FROM track ORDER BY title", [("four",), ("one",), ("three",), ("two",)])

    # every valid frame applied, in the log and the projection; the forged one only as a marker
    assert sorted(await q("SELECT did, rkey FROM record_event")) == sorted(
        [(alice.did, r.removeprefix(T)) for r in (R1, R2, R3)] + [(bob.did, "3kbbbbbbbbb22"),
                                                                 (bob.did, R4.removeprefix(T))])
    assert await q("SELECT count(*) FROM repo_event WHERE kind = 'forged'") == [(1,)]
    # bob: first seen (identity) + the #identity frame; the backwards copy was dropped as a duplicate
    assert await q("SELECT count(*) FROM repo_event WHERE kind = 'identity' AND did = %s", bob.did) == [(2,)]

    rejects = await q("SELECT reason_kind, reason, source_seq FROM frame_reject ORDER BY id")
    reasons = [r for _, r, _ in rejects]
    for expected in ("1..2^63-1, got 9223372036854775808",  # seq = 2^63
                     "not DAG-CBOR",  # 2^64 (a CBOR bignum), random bytes, truncated
                     "nested deeper than 32", "more than 20000 CBOR items",
                     f"skipped seqs {huge_seq}..{huge_seq}",  # the 50 MB frame: one reject for it
                     "repo must be a string"):
        assert any(expected in r for r in reasons), (expected, reasons)
    assert [k for k, _, _ in rejects].count("too_big") == 1
    # a broken frame's seq is kept for forensics but never moved the cursor (it ended on c9's, above)
    assert [s for _, r, s in rejects if "repo must be a string" in r] == [10**6]
    assert (REGISTRY.get_sample_value("ingest_duplicate_frames_total", {"source": source}) or 0) >= 1
    assert (REGISTRY.get_sample_value("ingest_rejects_total", {"reason": "too_big"}) or 0) >= 1
    # the 50 MB frame: hit live, hit again from the cursor just before it, then skipped (cursor = its seq)
    # (one more hit from the cursor before it when frames were still parked at the first hit)
    assert relay.cursors[0] is None and relay.cursors[-2:] == [huge_seq - 1, huge_seq + inclusive]
    assert len(relay.cursors) <= 4
