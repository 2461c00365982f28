"""Read-side benchmark: seed a world through the ingester's write path, serve it with one uvicorn
worker, drive it with an aiohttp client (not the bottleneck httpx would be), and print p50/p99/req/s
for the hydrated feed page, track detail and the per-track (N+1) baseline of the same page.

  python bench/read.py [--tracks 100000 --artists 5000 --likes 1000000 --comments 200000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.read_seed import seed  # noqa: E402
from bench.scratch import DEFAULT_URL, scratch_database, server_line  # noqa: E402

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def drive(base: str, paths: list[str], seconds: float, concurrency: int) -> dict[str, float]:
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=conn) as session:
        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                async with session.get(paths[i % len(paths)]) as r:
                    await r.read()
                    errors += r.status != 200
                lat.append(time.perf_counter() - t0)
                i += concurrency
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {"n": len(lat), "rps": len(lat) / wall, "p50": statistics.median(lat) * 1000,
            "p99": lat[int(len(lat) * 0.99) - 1] * 1000, "errors": errors}


async def warm(base: str, paths: list[str]) -> None:
    async with aiohttp.ClientSession(base) as s:
        for p in paths:
            async with s.get(p) as r:
                await r.read()


async def cursors(base: str, pages: int) -> tuple[list[str], list[int]]:
    """Real cursors from walking the feed, so the load pages through the whole keyset, not page one."""
    out, ids, cursor = [], [], None
    async with aiohttp.ClientSession(base) as s:
        for _ in range(pages):
            async with s.get("/tracks/", params={"limit": 50, **({"cursor": cursor} if cursor else {})}) as r:
                body = await r.json()
            ids += [t["id"] for t in body["tracks"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
            out.append(cursor)
    return out, ids


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", "--url", dest="url", default=DEFAULT_URL)
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--artists", type=int, default=5_000)
    ap.add_argument("--likes", type=int, default=1_000_000)
    ap.add_argument("--comments", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    a = ap.parse_args()
    async with scratch_database(a.url, "bench_read") as url:
        print(await server_line(url))
        took = await seed(url, a.artists, a.tracks, a.likes, a.comments)
        print(f"seeded {a.tracks:,} tracks / {a.artists:,} artists / {a.likes:,} likes / {a.comments:,} comments "
              f"through append+project in {took:.0f} s")
        for mode in ("nocache", "cache"):
            await run_server(url, mode, a)


async def run_server(url: str, mode: str, a: argparse.Namespace) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "read_server.py"), url, str(port), mode])  # noqa: ASYNC220
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                async with aiohttp.ClientSession(base) as s, s.get("/health") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # let the projection watcher learn the position
        pages, known = await cursors(base, 60)
        rng = random.Random(1)
        feed = ["/tracks/?limit=50"] + [f"/tracks/?limit=50&cursor={aiohttp.helpers.quote(c, safe='')}"
                                        for c in pages]
        detail = [f"/tracks/{i}" for i in rng.sample(known, min(len(known), 2000))]
        baseline = [p.replace("/tracks/?", "/bench/per-track-feed?") for p in feed]
        scenarios = [("feed page of 50 (hydrated)", feed), ("feed page of 50, per-track queries", baseline),
                     ("track detail", detail), ("top tracks (all time, 10)", ["/tracks/top?limit=10"]),
                     ("feed page of 50, 1 connection", feed), ("track detail, 1 connection", detail)]
        label = "response cache on" if mode == "cache" else "response cache off"
        print(f"\n{label}\n{'scenario':40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'n':>7} {'errors':>7}")
        results = {}
        for name, paths in scenarios:
            if mode == "cache" and "per-track" in name:
                continue
            conc = 1 if "1 connection" in name else a.concurrency  # latency without queueing in our one worker
            await drive(base, paths, 1.0, conc)  # warm-up (connections, prepared statements)
            if mode == "cache":
                await warm(base, paths)  # steady state: every path has been asked once
            r = await drive(base, paths, a.seconds, conc)
            results[name] = r
            print(f"{name:40} {r['rps']:8.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['n']:7d} {r['errors']:7d}")
        if mode == "nocache":
            hyd, base_r = results["feed page of 50 (hydrated)"], results["feed page of 50, per-track queries"]
            print(f"hydrated vs per-track: {hyd['rps'] / base_r['rps']:.1f}x req/s, "
                  f"p99 {base_r['p99'] / hyd['p99']:.1f}x lower")
    finally:
        server.terminate()
        server.wait(10)

if __name__ == "__main__":
    asyncio.run(main())
