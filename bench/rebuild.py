"""Rebuild a large log (default 1M events) twice: events/s, both digests, beside plain COPY of the same rows.

The log is the `ingest.py` workload's shape at scale, without signatures (a rebuild never re-verifies):
`gen_dataset.py` records (tracks, album lists, likes) plus, derived with a fixed seed, comments, track edits and
unlikes (`signed_frames._repo_ops`), cut into commits per repo, given increasing TID revs and appended through
`append_batch` (the real write path) with one `identity` repo event before each repo's first commit.
Then, in the same run:
  live      with --live: `Projector.catch_up` from 0 first (what the service does, in 5,000-event steps), whose
            digest both rebuilds must equal (bench/ingest.py always checks rebuild == live on its smaller log)
  rebuild   `appview rebuild` twice (`ingester.projection.rebuild.rebuild`): events/s and the full digest each time
  limit     a plain binary COPY of the same rows (the log rows and the projection rows the rebuild produced) into
            unindexed tables: the machine's limit for writing that much data (bench/limit.py)
  /work/venv/bin/python bench/rebuild.py [--events 1000000] [--database-url …]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from pathlib import Path

from gen_dataset import tid
from limit import copy_limit
from scratch import DEFAULT_URL, Meter, scratch_database, server_line
from signed_frames import _commits, _repo_ops, ensure_dataset

from core.db.connect import connect
from core.events import RecordEvent, RepoEvent
from core.logs import configure_logging
from core.process import tune_gc
from ingester.eventlog.append import append_batch
from ingester.projection.digest import digest
from ingester.projection.rebuild import rebuild
from ingester.projection.runner import Projector

OPS_PER_TRACK = 6.76  # the dataset's ops (records + derived comments/edits/unlikes) per track, measured


def log_events(workdir: Path, events: int, seed: int = 11) -> list[RecordEvent | RepoEvent]:
    rng = random.Random(seed)
    tracks = max(100, int(events / OPS_PER_TRACK))
    repo_ops, handles = _repo_ops(ensure_dataset(workdir, tracks), rng)
    out: list[RecordEvent | RepoEvent] = []
    start_us = (time.time_ns() // 1000) - 3_600_000_000
    seen: set[str] = set()
    for n, (_, did, ops) in enumerate(_commits(repo_ops, rng), start=1):
        if did not in seen:
            seen.add(did)
            out.append(RepoEvent(did, "identity", {"handle": handles[did], "pds": "https://pds.example",
                                                   "signing_key": "did:key:zQ3shbench"}, "bench", n))
        rev = tid(start_us + 10 * n)
        for action, coll, rkey, rec in ops:
            cid = None if rec is None else f"bafyrei{n:x}{rkey}"
            out.append(RecordEvent(did, coll, rkey, rev, action, cid, rec, "bench", n, True))  # type: ignore[arg-type]
        if len(out) >= events:
            break
    return out[:events]


async def fill(url: str, events: list[RecordEvent | RepoEvent], batch: int = 5000) -> None:
    async with await connect(url) as conn:
        for i in range(0, len(events), batch):
            await append_batch(conn, events[i:i + batch])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2, help="rebuilds (each digest must equal live's)")
    ap.add_argument("--live", action="store_true", help="fold live first; rebuild digests must equal it")
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/plyr-bench-rebuild"))
    asyncio.run(amain(ap.parse_args()))


async def amain(a: argparse.Namespace) -> None:
    configure_logging("json", "warning")
    tune_gc()
    t = time.perf_counter()
    events = log_events(a.workdir, a.events)
    print(f"{await server_line(a.database_url)}\nlog: {len(events)} events built in {time.perf_counter() - t:.1f} s;"
          f" load average {os.getloadavg()}")
    async with scratch_database(a.database_url, "bench_rebuild") as url:
        t = time.perf_counter()
        await fill(url, events)
        print(f"appended in {time.perf_counter() - t:.1f} s")
        del events
        live = None
        if a.live:
            t = time.perf_counter()
            async with await connect(url) as conn:
                await Projector().catch_up(conn)
                live = await digest(conn)
            live_s = time.perf_counter() - t
            print(f"live catch_up: {live_s:.1f} s ({a.events / live_s:,.0f} events/s)")
        rates, digests = [], []
        for i in range(a.repeat):
            async with await connect(url, autocommit=True) as mconn:
                meter = Meter(mconn)  # CPU: this process, and the scratch database's backends (incl. index workers)
                s0 = await meter.snap()
                task = asyncio.create_task(rebuild(url, show_progress=False))
                peak: dict[int, float] = {}
                while not task.done():  # backends come and go (the read-ahead connection, index build workers)
                    snap = await meter.snap()
                    peak.update(snap[2])
                    await asyncio.wait([task], timeout=0.5)
                n = await task
                s1 = await meter.snap()
            s = s1[0] - s0[0]
            py = s1[1] - s0[1]
            pg = sum(v - s0[2].get(pid, 0.0) for pid, v in {**peak, **s1[2]}.items())
            async with await connect(url) as conn:
                d = await digest(conn)
            rates.append(n / s)
            digests.append(d.sha256)
            same = "" if live is None else f" ({'==' if d.sha256 == live.sha256 else '!='} live)"
            print(f"rebuild {i + 1}: {n} events in {s:.1f} s = {n / s:,.0f} events/s "
                  f"(CPU: py {py:.1f} s, pg {pg:.1f} s); digest {d.sha256}{same}; load average {os.getloadavg()}")
        lim = await copy_limit(url)
        print(lim.render())
        best = max(rates)
        print(f"rebuild {a.events} events: best {best:,.0f} events/s ({a.events / best:.1f} s; target <= 60 s); "
              f"plain COPY limit {lim.rate(a.events):,.0f} events/s (rebuild / limit {best / lim.rate(a.events):.2f});"
              f" digests {'all equal' if len(set(digests)) == 1 else 'DIFFER'}")


if __name__ == "__main__":
    main()
