"""Reading through a streaming replica vs the primary, same run, same data: a primary + `pg_basebackup -R` standby
started from /usr/lib/postgresql/15/bin (tests/appview/replica_kit.py), a seeded world, the real app under uvicorn
(bench/read_server.py, one worker, response cache off) once with DATABASE_READ_URL unset (the baseline) and once
pointing at the replica; then how long a newly projected track takes to be served (response cache on, no stale
grace): through the primary, the NOTIFY; through the replica, replication plus the replica position poll.

  python bench/replicas.py [--tracks 5000 --artists 200 --likes 50000 --comments 5000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.read import cursors, drive, free_port  # noqa: E402
from bench.read_seed import seed  # noqa: E402
from core.db.connect import connect  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from ingester.eventlog.append import append_batch  # noqa: E402
from ingester.projection.runner import Projector  # noqa: E402
from tests.appview.replica_kit import Cluster, missing_binaries  # noqa: E402
from tests.appview.world import tid  # noqa: E402
from tests.ingester import events as ev  # noqa: E402

HERE = Path(__file__).resolve().parent
DB = "appview"
ARTIST = "did:plc:benchvisibleaaaaaaaaaaaa"


async def serve(url: str, read_url: str, mode: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # Stale entries off: the visibility figure is then replication + position polling, not the cache's grace.
    env = dict(os.environ, DATABASE_READ_URL=read_url, RESPONSE_CACHE_STALE_S="0")
    server = subprocess.Popen([sys.executable, str(HERE / "read_server.py"), url, str(port), mode], env=env)  # noqa: ASYNC220
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            async with aiohttp.ClientSession(base) as s, s.get("/status") as r:
                if r.status == 200 and all(x["serving"] for x in (await r.json())["replicas"]):
                    break
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    return server, base


async def visibility(url: str, base: str, n: int) -> list[float]:
    """Seconds from a track's projection commit on the primary to the API serving it (response cache on)."""
    out = []
    async with aiohttp.ClientSession(base) as s:
        for i in range(n):
            title = f"visible {time.time_ns()} {i}"
            async with await connect(url) as conn:
                rev = tid(time.time_ns() // 1000)
                await append_batch(conn, [ev.identity(ARTIST, "visible.test"),
                                          ev.put(ARTIST, "fm.plyr.track", rev, rev, ev.track(title))])
                await Projector().catch_up(conn)
            t0 = time.perf_counter()
            while True:
                async with s.get("/tracks/?limit=5") as r:
                    if any(t["title"] == title for t in (await r.json())["tracks"]):
                        break
                await asyncio.sleep(0.002)
            out.append(time.perf_counter() - t0)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracks", type=int, default=5_000)
    ap.add_argument("--artists", type=int, default=200)
    ap.add_argument("--likes", type=int, default=50_000)
    ap.add_argument("--comments", type=int, default=5_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    why = missing_binaries()
    if why:
        sys.exit(f"replicas bench: {why}")
    cluster = Cluster()
    try:
        cluster.start(DB)
        primary, replica = cluster.primary.url(DB), cluster.replica.url(DB)
        upgrade(primary)
        took = await seed(primary, a.artists, a.tracks, a.likes, a.comments)
        print(f"seeded {a.tracks:,} tracks / {a.likes:,} likes on the primary in {took:.0f} s; "
              f"load average {os.getloadavg()[0]:.2f}")
        results: dict[tuple[str, str], dict[str, float]] = {}
        for target, read_url in (("primary", ""), ("replica", replica)):
            server, base = await serve(primary, read_url, "nocache")
            try:
                pages, known = await cursors(base, 40)
                feed = ["/tracks/?limit=50"] + [f"/tracks/?limit=50&cursor={aiohttp.helpers.quote(c, safe='')}"
                                                for c in pages]
                detail = [f"/tracks/{i}" for i in random.Random(1).sample(known, min(len(known), 1000))]
                for name, paths, conc in (("feed page of 50", feed, a.concurrency),
                                          ("track detail", detail, a.concurrency),
                                          ("track detail, 1 connection", detail, 1)):
                    await drive(base, paths, 1.0, conc)
                    results[(name, target)] = await drive(base, paths, a.seconds, conc)
            finally:
                server.terminate()
                server.wait(10)
        print(f"\nresponse cache off, one uvicorn worker; load average {os.getloadavg()[0]:.2f}")
        print(f"{'scenario':28} {'target':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'ratio':>7}")
        for name in dict.fromkeys(n for n, _ in results):
            base_r = results[(name, "primary")]
            for target in ("primary", "replica"):
                r = results[(name, target)]
                print(f"{name:28} {target:8} {r['rps']:8.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['errors']:7d} "
                      f"{r['rps'] / base_r['rps']:6.2f}x")
        seen: dict[str, list[float]] = {}
        for target, read_url in (("primary", ""), ("replica", replica)):
            server, base = await serve(primary, read_url, "cache")
            try:
                seen[target] = sorted(await visibility(primary, base, 20))
            finally:
                server.terminate()
                server.wait(10)
        print(f"\nnew track projected → served (response cache on, RESPONSE_CACHE_STALE_S=0, 20 writes); load average "
              f"{os.getloadavg()[0]:.2f}")
        for target, xs in seen.items():
            print(f"{target:8} p50 {xs[len(xs) // 2] * 1000:7.1f} ms  max {xs[-1] * 1000:7.1f} ms  ratio p50 "
                  f"{xs[len(xs) // 2] / max(seen['primary'][len(xs) // 2], 1e-6):.2f}x")
    finally:
        cluster.close()


if __name__ == "__main__":
    asyncio.run(main())
