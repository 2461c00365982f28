"""`JetstreamSource` against the fake Jetstream (no PDS behind it): URLs, zstd, pre-upgrade errors."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import zstandard

from ingester.sources.firehose import HandlerResult
from ingester.sources.jetstream import JetstreamSource, dictionary_id, source_name, subscribe_url
from tests.jetstream_fake.server import DICTIONARY, DICTIONARY_ID, FakeJetstream
from tests.jetstream_fake.wire import Upstream

DID = "did:plc:eygmaihciaxprqvxpfvl6flk"


def identity(n: int) -> Upstream:
    return Upstream("identity", DID, None, wrapped={"did": DID, "seq": n, "time": "2026-11-24T12:00:00.000Z"})


async def collect(source: JetstreamSource, until: int) -> list[int]:
    """Run the source until it has seen `until` frames; return their seqs (v2) or time_us (v1)."""
    seen: list[int] = []
    stop = asyncio.Event()

    async def handler(frames: Sequence[bytes]) -> HandlerResult:
        for f in frames:
            obj = orjson.loads(f)
            seen.append(obj["payload"]["seq"] if "payload" in obj else obj["time_us"])
        if len(seen) >= until:
            stop.set()
        return HandlerResult(seen[-1])

    task = asyncio.create_task(source.run(handler, stop))
    try:
        await asyncio.wait_for(stop.wait(), 20)
    finally:
        task.cancel()  # as the service does: the reader may be parked on an idle socket
        await asyncio.gather(task, return_exceptions=True)
    return seen


def test_urls_and_names() -> None:
    assert subscribe_url("wss://js.example/", "v2", 7, ["fm.plyr.*"], 20260811) == (
        "wss://js.example/xrpc/network.bsky.jetstream.subscribeEvents?collections=fm.plyr.*&zstdDictionary=20260811"
        "&cursor=7")
    assert subscribe_url("js.example/subscribe", "v1", None, ["fm.plyr.*"]) == (
        "wss://js.example/subscribe?wantedCollections=fm.plyr.*")
    assert source_name("wss://js.example/subscribe", "v1") == "jetstream-v1:js.example"
    assert dictionary_id(DICTIONARY) == DICTIONARY_ID == 20260811


async def test_v2_compressed_inclusive_cursor() -> None:
    fake = await FakeJetstream().start()
    try:
        for n in range(1, 6):
            await fake.add(identity(n))
        source = JetstreamSource(fake.url, version="v2", cursor=3)
        assert await collect(source, 3) == [3, 4, 5]  # inclusive: the committed event comes again
        assert source.dictionary_id == DICTIONARY_ID
        assert "zstdDictionary=20260811" in fake.requests[-1]
    finally:
        await fake.stop()


async def test_cursor_too_old_resumes_at_the_floor_and_retired_dictionary_is_refetched() -> None:
    fake = await FakeJetstream(floor_seq=4).start()
    try:
        for n in range(1, 7):
            await fake.add(identity(n))
        source = JetstreamSource(fake.url, version="v2", cursor=2)
        source.dictionary_id = 1  # a retired id: the server answers UnknownZstdDictionary…
        source._dctx = object()  # type: ignore[assignment]  # …as if we had fetched it earlier
        assert await collect(source, 3) == [4, 5, 6]
        assert source.dictionary_id == DICTIONARY_ID
        # the two refused attempts never upgraded
        assert fake.requests == ["/xrpc/network.bsky.jetstream.subscribeEvents?collections=fm.plyr.*"
                                 "&collections=app.bsky.actor.profile&zstdDictionary=20260811&cursor=4"]
    finally:
        await fake.stop()


async def test_v1_time_us_cursor() -> None:
    fake = await FakeJetstream().start()
    try:
        events = [await fake.add(identity(n)) for n in range(1, 5)]
        source = JetstreamSource(fake.url, version="v1", cursor=events[1].time_us)
        assert await collect(source, 3) == [e.time_us for e in events[1:]]
        assert source.dictionary_id is None and "wantedCollections=fm.plyr.*" in fake.requests[-1]
    finally:
        await fake.stop()


async def test_corrupt_zstd_frame_is_counted_and_skipped() -> None:
    source = JetstreamSource("ws://127.0.0.1:1", version="v2", cursor=None)
    source._dctx = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(DICTIONARY))
    assert source.frame(b"\x28\xb5\x2f\xfd garbage") is None
    assert source.frame('{"a":1}') == b'{"a":1}'
