"""API workers: uncached feed pages (`/tracks/?limit=50`, walking real cursors) served by `appview serve
--workers 1` and `--workers 2` on the same seeded database, alternating (1, 2, 1, 2) so drift shows; prints
req/s, p50, p99, the load average beside each figure and the 2-vs-1 ratio. The client runs on the same machine:
on a small box it competes with the workers and Postgres for the same cores.

  python bench/workers.py [--tracks 20000 --artists 1000 --likes 200000 --comments 40000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.read import cursors, drive, free_port  # noqa: E402
from bench.read_seed import seed  # noqa: E402
from bench.scratch import DEFAULT_URL, scratch_database, server_line  # noqa: E402


async def serve(url: str, workers: int, seconds: float, concurrency: int) -> dict[str, float]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=url, PORT=str(port), RESPONSE_CACHE="false", DB_POOL_MAX="16",
               LOG_LEVEL="warning")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--workers", str(workers)], env=env,  # noqa: ASYNC220
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                async with aiohttp.ClientSession(base) as s, s.get("/health") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        pages, _ = await cursors(base, 40)
        feed = ["/tracks/?limit=50"] + [f"/tracks/?limit=50&cursor={aiohttp.helpers.quote(c, safe='')}"
                                        for c in pages]
        await drive(base, feed, 2.0, concurrency)  # warm-up: every worker's pool and plans
        load_before = os.getloadavg()[0]
        r = await drive(base, feed, seconds, concurrency)
        r["load"] = (load_before + os.getloadavg()[0]) / 2
        return r
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", "--url", dest="url", default=DEFAULT_URL)
    ap.add_argument("--tracks", type=int, default=20_000)
    ap.add_argument("--artists", type=int, default=1_000)
    ap.add_argument("--likes", type=int, default=200_000)
    ap.add_argument("--comments", type=int, default=40_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    async with scratch_database(a.url, "bench_workers") as url:
        print(await server_line(url), f"cpus={os.cpu_count()}")
        took = await seed(url, a.artists, a.tracks, a.likes, a.comments)
        print(f"seeded {a.tracks:,} tracks / {a.artists:,} artists / {a.likes:,} likes / {a.comments:,} comments "
              f"in {took:.0f} s")
        print(f"\nuncached /tracks/?limit=50, concurrency {a.concurrency}, {a.seconds:.0f} s each")
        print(f"{'workers':>7} {'round':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'n':>7} {'errors':>6} "
              f"{'load1':>6}")
        totals: dict[int, list[float]] = {1: [], 2: []}
        for rnd in range(a.rounds):
            for workers in (1, 2):
                r = await serve(url, workers, a.seconds, a.concurrency)
                totals[workers].append(r["rps"])
                print(f"{workers:7d} {rnd + 1:5d} {r['rps']:8.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['n']:7d} "
                      f"{r['errors']:6d} {r['load']:6.2f}")
        one, two = sum(totals[1]) / len(totals[1]), sum(totals[2]) / len(totals[2])
        print(f"\nmean req/s: 1 worker {one:.0f}, 2 workers {two:.0f}; ratio 2/1 = {two / one:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
