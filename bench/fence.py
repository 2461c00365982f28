"""Cost of the failover fence in the append transaction: `append_batch` with a leader's fence ÷ without.

Each round appends --batches batches of --size record events (distinct records, so every row is inserted) into
a scratch database, alternately without a fence (baseline) and with one (the lease row locked FOR KEY SHARE
and its epoch compared: one extra statement per transaction), --repeat times; medians per arm.

  rate  = record events appended per second of wall time
  ratio = fenced ÷ unfenced (1.0 = free; small batches show the per-transaction cost most)
  .venv/bin/python bench/fence.py [--size 1 --size 50 --size 500] [--batches 300] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from scratch import DEFAULT_URL, scratch_database, server_line

from core.db.connect import connect
from core.events import RecordEvent
from ingester.eventlog.append import append_batch
from ingester.eventlog.fence import FENCE, Fence


def events(round_: int, batch: int, size: int) -> list[RecordEvent]:
    return [RecordEvent(did=f"did:plc:bench{round_:04d}{batch:05d}", collection="fm.plyr.track", rkey=f"r{i:06d}",
                        rev=f"3k{i:011d}", action="create", cid=f"bafy{round_}-{batch}-{i}",
                        record={"$type": "fm.plyr.track", "title": f"t{i}"}, source="bench", source_seq=None,
                        verified=True) for i in range(size)]


async def arm(url: str, fenced: bool, round_: int, size: int, batches: int) -> float:
    async with await connect(url) as conn:
        token = FENCE.set(Fence(0) if fenced else None)  # the migration's lease row has epoch 0
        try:
            work = [events(round_, b, size) for b in range(batches)]
            started = time.perf_counter()
            for batch in work:
                await append_batch(conn, batch)
            return size * batches / (time.perf_counter() - started)
        finally:
            FENCE.reset(token)


async def main(args: argparse.Namespace) -> None:
    print(await server_line(args.database_url))
    async with scratch_database(args.database_url, "bench_fence") as url:
        for size in args.size:
            rates: dict[bool, list[float]] = {False: [], True: []}
            for r in range(args.repeat):
                for fenced in ((False, True) if r % 2 == 0 else (True, False)):  # alternate which goes first
                    rates[fenced].append(await arm(url, fenced, r * 2 + int(fenced) + size * 100, size, args.batches))
            base, fence = statistics.median(rates[False]), statistics.median(rates[True])
            print(f"batch {size:>4}: unfenced {base:9.0f} events/s  fenced {fence:9.0f} events/s  "
                  f"ratio {fence / base:.3f}  (load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--size", type=int, action="append")
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    args.size = args.size or [1, 50, 500]
    asyncio.run(main(args))
