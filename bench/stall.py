"""Ingest throughput with 1 % of DIDs on stalling hosts ÷ with none: per-repo scheduling at work.

Workload: bench/signed_frames.py (the `ingest.py` one: ~30k fm.plyr ops in ~25k signed, chained `#commit`
frames for 450 repos), fed to `Ingest.handle` in --batch frame batches from an empty log, with `run_parked`
flushing parked repos alongside (as the service runs it) and the identity deadline at its default (5 s).
In the stalled run, --stalled-share of the DIDs (chosen with a fixed seed) resolve against a host that accepts
and never answers (the resolver's fetch sleeps for an hour), so each of their frames is parked until the
deadline; every other DID document comes from memory at once.

  throughput = record ops in the log when the last batch returns ÷ wall time of the batches
  ratio      = stalled ÷ none (target ≥ 0.9): the slow DIDs cost only their own frames
It also prints how many frames were still parked when the last batch returned, how long after that the
stalled repos took (≈ the deadline), and checks that both runs end with every op in the log.
  .venv/bin/python bench/stall.py [--tracks 4500] [--batch 1000] [--repeat 3] [--stalled-share 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import time
from pathlib import Path
from typing import Any

from ingest import MemoryResolver, reset
from scratch import DEFAULT_URL, scratch_database, server_line
from signed_frames import Workload, build

from core.db.connect import connect
from core.identity import DidInfo
from core.logs import configure_logging
from core.process import tune_gc
from ingester.pipeline.ingest import Ingest
from ingester.pipeline.resolution import Resolutions
from ingester.validate.records import RecordValidator
from ingester.verify.signature import SignatureVerifier

TARGET_RATIO = 0.9


class StallingResolver(MemoryResolver):
    """DID documents from memory, except the stalled DIDs', whose host never answers."""

    def __init__(self, docs: dict[str, dict[str, Any]], stalled: set[str]) -> None:
        super().__init__(docs)
        self.stalled = stalled

    async def _fetch(self, did: str) -> DidInfo:
        if did in self.stalled:
            await asyncio.sleep(3600)
        return await super()._fetch(did)


async def count_ops(url: str) -> int:
    async with await connect(url) as conn:
        cur = await conn.execute("SELECT count(*) FROM record_event")
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def run(url: str, w: Workload, batch: int, validator: RecordValidator, stalled: set[str],
              deadline_s: float) -> tuple[float, float, int, float, int]:
    """(ops/s over the batches, ops per CPU second of this process, frames parked after the last batch,
    seconds until none is, ops logged in all)."""
    await reset(url)
    resolver = StallingResolver(w.did_docs, stalled)
    resolutions = Resolutions(resolver, deadline_s=deadline_s)
    stop = asyncio.Event()
    async with await connect(url) as conn:
        ingest = Ingest(conn, source="firehose:bench", resolver=resolver, verifier=SignatureVerifier(resolver),
                        validator=validator, resolutions=resolutions)
        flusher = asyncio.create_task(ingest.run_parked(lambda: ingest.handle([]), stop))
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, len(w.frames), batch):
            await ingest.handle(w.frames[i:i + batch])
        t1, c1 = time.perf_counter(), time.process_time()
        async with ingest._serial:  # noqa: SLF001 - a consistent count: no flush in the middle of it
            ops = await count_ops(url)
            parked = len(ingest.parking)
        while len(ingest.parking):  # noqa: ASYNC110 - waiting on the flusher task, as the service does
            await asyncio.sleep(0.05)
        tail = time.perf_counter() - t1
        stop.set()
        await flusher
    await resolutions.aclose()
    await resolver.aclose()
    return ops / (t1 - t0), ops / (c1 - c0), parked, tail, await count_ops(url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=4500)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stalled-share", type=float, default=0.01)
    ap.add_argument("--deadline", type=float, default=5.0, help="IDENTITY_DEADLINE_S")
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/plyr-bench-ingest"))
    asyncio.run(amain(ap.parse_args()))


async def amain(a: argparse.Namespace) -> None:
    configure_logging("json", "error")
    tune_gc()
    w = build(a.workdir, a.tracks)
    dids = sorted(w.did_docs)
    stalled = set(random.Random(7).sample(dids, max(1, round(len(dids) * a.stalled_share))))
    frames_stalled = sum(1 for f in w.frames if any(d.encode() in f for d in stalled))
    print(f"{await server_line(a.database_url)}\nworkload: {w.ops} ops in {len(w.frames)} frames for {len(dids)} "
          f"repos; stalled: {len(stalled)} DIDs ({len(stalled) / len(dids):.1%}) with {frames_stalled} frames "
          f"({frames_stalled / len(w.frames):.1%}); identity deadline {a.deadline:g} s")
    validator = RecordValidator()
    none: list[tuple[float, float]] = []
    slow: list[tuple[float, float]] = []
    async with scratch_database(a.database_url, "bench_stall") as url:
        for i in range(a.repeat):
            for which in ("none", "stalled") if i % 2 == 0 else ("stalled", "none"):  # alternate: cancel drift
                if which == "none":
                    rate, cpu, parked, _, total = await run(url, w, a.batch, validator, set(), a.deadline)
                    assert parked == 0 and total == w.ops, (parked, total)
                    none.append((rate, cpu))
                else:
                    rate, cpu, parked, tail, total = await run(url, w, a.batch, validator, stalled, a.deadline)
                    assert total == w.ops, total
                    slow.append((rate, cpu))
            print(f"repeat {i + 1}: none {none[-1][0]:,.0f} ops/s ({none[-1][1]:,.0f}/CPU-s); stalled "
                  f"{slow[-1][0]:,.0f} ops/s ({slow[-1][1]:,.0f}/CPU-s), {parked} frames parked after the last "
                  f"batch, handled {tail:.1f} s later")
    n, s = statistics.median(r for r, _ in none), statistics.median(r for r, _ in slow)
    nc, sc = statistics.median(c for _, c in none), statistics.median(c for _, c in slow)
    ratio = s / n
    print(f"\n{'':28} {'ops/s':>9} {'ops/CPU-s':>10}\n{'no stalling hosts':28} {n:>9,.0f} {nc:>10,.0f}\n"
          f"{f'{len(stalled)} DIDs on stalling hosts':28} {s:>9,.0f} {sc:>10,.0f}\n"
          f"ratio: {ratio:.2f} wall, {sc / nc:.2f} CPU (target ≥ {TARGET_RATIO}) "
          f"{'✔' if ratio >= TARGET_RATIO else '✘'}")


if __name__ == "__main__":
    main()
