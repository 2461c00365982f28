"""The projector's live step for one new track, by the size of its artist's catalogue.

Every step that writes a track, a like, a comment or a play moves that artist's `artist_counter` row. The
projector moves it by the difference the step's tracks made (`ingester/projection/counters.py`,
`_TRACKS_MOVING`), so a step costs the same whatever the catalogue. Beside each step, in the same run and on
the same rows, the statement the projector ran before (`_ARTISTS`: the artist re-summed from every one of its
tracks) is timed on its own: what each such step paid on top.

  .venv/bin/python bench/counters.py [--sizes 10,10000,50000] [--steps 100] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch import DEFAULT_URL, scratch_database, server_line  # noqa: E402
from core.db.connect import connect  # noqa: E402
from ingester.eventlog.append import append_batch  # noqa: E402
from ingester.projection import counters  # noqa: E402
from ingester.projection.runner import Projector  # noqa: E402
from tests.ingester.events import identity, put, track  # noqa: E402

DID = "did:plc:benchcountersaaaaaaaaaaa"


async def one_size(url: str, size: int, steps: int) -> tuple[float, float]:
    """(median live step ms, median whole-artist re-sum ms) for an artist with `size` tracks."""
    async with await connect(url) as conn:
        batch = 5000
        for b in range(0, size, batch):
            await append_batch(conn, [identity(DID, "bench.test")] + [
                put(DID, "fm.plyr.track", f"r{i}", f"3k{i:011d}", track(f"t{i}", duration=200))
                for i in range(b, min(size, b + batch))])
        projector = Projector()
        await projector.catch_up(conn)
        await conn.execute("ANALYZE")
        await conn.execute("SET synchronous_commit = off")  # as the live projector runs
        await conn.commit()
        step_ms: list[float] = []
        resum_ms: list[float] = []
        for i in range(steps):
            await append_batch(conn, [put(DID, "fm.plyr.track", f"n{i}", f"3l{i:011d}", track(f"n{i}"))])
            t0 = time.perf_counter()
            await projector.step(conn)
            step_ms.append((time.perf_counter() - t0) * 1000)
            async with conn.transaction(force_rollback=True), conn.cursor() as cur:
                t0 = time.perf_counter()
                await cur.execute(counters._ARTISTS, {"dids": [DID]})
                resum_ms.append((time.perf_counter() - t0) * 1000)
        return statistics.median(step_ms), statistics.median(resum_ms)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,10000,50000", help="the artist's catalogue sizes, comma separated")
    ap.add_argument("--steps", type=int, default=100, help="live steps (one new track each) per size")
    ap.add_argument("--database-url", default=DEFAULT_URL)
    a = ap.parse_args()
    print(await server_line(a.database_url))
    print(f"{'catalogue':>10} {'live step p50 ms':>17} {'whole-artist re-sum p50 ms':>27} {'re-sum / step':>14}")
    for size in (int(s) for s in a.sizes.split(",")):
        async with scratch_database(a.database_url, "bench_counters") as url:  # a fresh database per size
            step, resum = await one_size(url, size, a.steps)
        print(f"{size:>10,} {step:>17.2f} {resum:>27.2f} {resum / step:>13.2f}x", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
