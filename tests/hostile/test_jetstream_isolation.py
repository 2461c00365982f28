"""Jetstream gets the same isolation: junk frames are recorded rejects, replays are dropped, absurd cursors
never reach `source_cursor`, and every valid event around them is logged."""

from __future__ import annotations

import time

import orjson
import psycopg
import pytest

from ingester.decode.jetstream import JetstreamError, decode_jetstream
from tests.ingester.framekit import track
from tests.ingester.test_jetstream_pipeline import Rig

TRACK = "fm.plyr.track"


def bomb() -> bytes:
    return b'{"did":"d","time_us":1,"kind":"commit","x":' + b"[" * 60_000 + b"]" * 60_000 + b"}"


def test_decoder_bounds() -> None:
    with pytest.raises(JetstreamError, match="more than 50000 JSON objects/arrays"):
        decode_jetstream(bomb(), "v1")
    future = time.time_ns() // 1000 + 3600 * 10**6
    with pytest.raises(JetstreamError, match="in the future"):
        decode_jetstream(orjson.dumps({"did": "d", "time_us": future, "kind": "account",
                                       "account": {"active": True}}), "v1")
    with pytest.raises(JetstreamError, match="64-bit"):
        decode_jetstream(orjson.dumps({"$type": "message", "payload": {
            "$type": "network.bsky.jetstream.subscribeEvents#identity", "seq": 2**63, "did": "d", "time": "t",
            "identity": {}}}), "v2")


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_junk_between_valid_events(conn: psycopg.AsyncConnection, version: str) -> None:
    rig = Rig(conn, version)
    alice = rig.repo("alice.test")
    first = rig.frames(alice.commit([("create", f"{TRACK}/3kaaaaaaaaa22", track("One"))]))
    second = rig.frames(alice.commit([("create", f"{TRACK}/3kbbbbbbbbb22", track("Two"))]))
    far = orjson.loads(second[0])
    if version == "v2":
        far["payload"]["seq"] = 2**63 - 1  # a sound but absurd seq: processed, never the cursor
    else:
        far["time_us"] = 2**63  # out of range: a reject
    junk = [bomb(), b"\xff\xfe not json", b'{"$type": 7}', orjson.dumps(far)]

    await rig.ingest.handle(first + junk)
    await rig.ingest.handle(first + second)  # a replay of `first`, then new

    assert [r for (r,) in await rig.rows("SELECT rkey FROM record_event ORDER BY seq")] == [
        "3kaaaaaaaaa22", "3kbbbbbbbbb22"]
    last = orjson.loads(second[-1])
    want = last["payload"]["seq"] if version == "v2" else last["time_us"]
    assert await rig.rows("SELECT cursor FROM source_cursor") == [(want,)]
    kinds = await rig.rows("SELECT reason_kind, reason FROM frame_reject ORDER BY id")
    assert all(k == "decode" for k, _ in kinds)
    assert any("JSON objects/arrays" in r for _, r in kinds) and any("not JSON" in r for _, r in kinds)
    assert len(kinds) == (3 if version == "v2" else 4)
