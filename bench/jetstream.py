"""Decode + append throughput of Jetstream v2 frames vs the firehose path, on the same synthetic dataset.

Workload: bench/signed_frames.py (signed, chained `#commit` frames for ~450 repos, real MSTs). The same
frames are turned into Jetstream v2 events by the test suite's fake Jetstream converter (one JSON frame
per op, `{"$type":"message","payload":{…#commit…}}`) and dict-zstd compressed with Jetstream's own
`subscribe_events_20260811` dictionary (level 1, as the server's SpeedFastest).

  decode     firehose: `decode_frame` (CBOR, CAR, MST proof) per frame
             jetstream: zstd decompress + `decode_jetstream` (JSON + CID recomputed from the record) per frame
  ingest     `Ingest.handle` (decode, k256 signature, chain, validate, append) vs the source's decompression +
             `JetstreamIngest.handle` (decode, CID, validate, append), --batch frames per call, from empty tables
Median of --repeat; figures in ops/s (record ops). Sizes: mean bytes per op on each wire.
  /work/venv/bin/python bench/jetstream.py [--tracks 4500] [--batch 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from pathlib import Path

import zstandard
from ingest import MemoryResolver, reset
from scratch import DEFAULT_URL, scratch_database, server_line
from signed_frames import build

from core.db.connect import connect
from core.logs import configure_logging
from core.process import tune_gc
from ingester.decode.frames import decode_frame
from ingester.decode.jetstream import decode_jetstream
from ingester.pipeline.ingest import Ingest
from ingester.pipeline.jetstream import JetstreamIngest
from ingester.sources.jetstream import JetstreamSource
from ingester.validate.records import RecordValidator
from ingester.verify.signature import SignatureVerifier
from tests.jetstream_fake.server import DICTIONARY, FakeJetstream
from tests.jetstream_fake.wire import convert, v2_json


def jetstream_frames(firehose: list[bytes]) -> list[bytes]:
    cctx = FakeJetstream().cctx
    out, seq, t = [], 0, 1_790_000_000_000_000
    for f in firehose:
        for up in convert(f):
            seq += 1
            out.append(cctx.compress(v2_json(up, t + seq, seq).encode()))
    return out


def decompressor() -> JetstreamSource:
    source = JetstreamSource("ws://bench.invalid", version="v2", cursor=None)
    source._dctx = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(DICTIONARY))
    return source


def timed(fn: object, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


async def ingest_firehose(url: str, frames: list[bytes], docs: dict, batch: int, v: RecordValidator) -> float:
    await reset(url)
    resolver = MemoryResolver(docs)
    async with await connect(url) as conn:
        ingest = Ingest(conn, source="firehose:bench", resolver=resolver, verifier=SignatureVerifier(resolver),
                        validator=v)
        gc.collect()
        t0 = time.perf_counter()
        for i in range(0, len(frames), batch):
            await ingest.handle(frames[i:i + batch])
            await ingest.drain()
        took = time.perf_counter() - t0
    await resolver.aclose()
    return took


async def ingest_jetstream(url: str, frames: list[bytes], docs: dict, batch: int, v: RecordValidator) -> float:
    await reset(url)
    resolver = MemoryResolver(docs)
    source = decompressor()
    async with await connect(url) as conn:
        ingest = JetstreamIngest(conn, source="jetstream-v2:bench", version="v2", resolver=resolver, validator=v)
        gc.collect()
        t0 = time.perf_counter()
        for i in range(0, len(frames), batch):
            await ingest.handle([d for f in frames[i:i + batch] if (d := source.frame(f)) is not None])
        took = time.perf_counter() - t0
    await resolver.aclose()
    return took


async def amain(a: argparse.Namespace) -> None:
    configure_logging(level="warning")
    tune_gc()
    w = build(a.workdir, a.tracks)
    js = jetstream_frames(w.frames)
    assert len(js) == w.ops, (len(js), w.ops)
    source = decompressor()
    plain = [source.frame(f) or b"" for f in js]
    print(f"# {await server_line(a.database_url)}")
    print(f"workload: {w.ops} ops in {len(w.frames)} firehose frames, {len(js)} Jetstream v2 frames, "
          f"{len(w.did_docs)} repos")
    print(f"bytes/op: firehose {sum(map(len, w.frames)) / w.ops:.0f}, v2 JSON {sum(map(len, plain)) / w.ops:.0f}, "
          f"v2 dict-zstd {sum(map(len, js)) / w.ops:.0f}")

    fh = timed(lambda: [decode_frame(f) for f in w.frames], a.repeat)
    jd = timed(lambda: [decode_jetstream(source.frame(f) or b"", "v2") for f in js], a.repeat)
    jp = timed(lambda: [decode_jetstream(f, "v2") for f in plain], a.repeat)
    print(f"decode    firehose {w.ops / fh:>9,.0f} ops/s | jetstream v2 zstd {w.ops / jd:>9,.0f} ops/s "
          f"(uncompressed JSON {w.ops / jp:,.0f} ops/s)")

    validator = RecordValidator()
    async with scratch_database(a.database_url, "bench_jetstream") as url:
        f_runs = [await ingest_firehose(url, w.frames, w.did_docs, a.batch, validator) for _ in range(a.repeat)]
        j_runs = [await ingest_jetstream(url, js, w.did_docs, a.batch, validator) for _ in range(a.repeat)]
    fi, ji = statistics.median(f_runs), statistics.median(j_runs)
    print(f"ingest    firehose {w.ops / fi:>9,.0f} ops/s | jetstream v2 zstd {w.ops / ji:>9,.0f} ops/s "
          f"(decode + append into the log, batch {a.batch}; runs {[round(x, 2) for x in f_runs]} vs "
          f"{[round(x, 2) for x in j_runs]} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=4500)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/plyr-bench-ingest"))
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
