"""Uncached reads beside plyr.fm's own backend, same dataset, same load generator, same run.

Seeds our log from `gen_dataset.py`'s JSONL (identities, Bluesky display names, every record) through
append + projector, serves it with `read_server.py` (one uvicorn worker, response cache off) and drives
both servers with `wrk` (Debian package) over the same paths, alternating, at each concurrency. plyr.fm
runs as peers.md §1 describes (seeded by `seed_plyr.py` from the same JSONL); pass its base URL.

  python bench/read_plyr.py --dataset dataset-10k.jsonl --plyr-url http://127.0.0.1:8001 [--before ../old-checkout] \\
      [--database-url postgresql://…] [--seconds 10] [--conns 1 8] [--db NAME to reuse a seeded database]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.read import free_port  # noqa: E402
from bench.scratch import DEFAULT_URL, server_line, server_url, with_database  # noqa: E402
from core.db.connect import connect  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.events import RecordEvent, RepoEvent  # noqa: E402
from ingester.eventlog.append import append_batch  # noqa: E402
from ingester.projection.runner import Projector  # noqa: E402

HERE = Path(__file__).resolve().parent
PATHS = ("/tracks/?limit=50", "/stats")


def events(path: Path) -> Iterator[RecordEvent | RepoEvent]:
    with path.open() as f:
        for line in f:
            o = json.loads(line)
            if o["kind"] == "identity":
                yield RepoEvent(did=o["did"], kind="identity", source="bench",
                                payload={"handle": o["handle"], "pds": o["pds"], "signing_key": "did:key:z"})
                yield RecordEvent(did=o["did"], collection="app.bsky.actor.profile", rkey="self", rev="2222222222222",
                                  action="create", cid=f"bafyreiprofile{o['did'][8:]}", source="bench", source_seq=None,
                                  verified=True, record={"$type": "app.bsky.actor.profile",
                                                         "displayName": o["displayName"]})
            elif o["kind"] == "record":
                yield RecordEvent(did=o["did"], collection=o["collection"], rkey=o["rkey"], rev=o["rev"],
                                  action="create", cid=o["cid"], record=o["record"], source="bench",
                                  source_seq=None, verified=True)


async def seed(url: str, dataset: Path) -> float:
    t0 = time.perf_counter()
    async with await connect(url) as conn:
        batch: list[RecordEvent | RepoEvent] = []
        for e in events(dataset):
            batch.append(e)
            if len(batch) >= 20_000:
                await append_batch(conn, batch)
                batch = []
        if batch:
            await append_batch(conn, batch)
        await Projector(batch_size=20_000).catch_up(conn)
        await conn.execute("ANALYZE")
        await conn.commit()
    return time.perf_counter() - t0


def wrk(url: str, conns: int, seconds: float) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) of one wrk run; non-2xx answers make the run fail."""
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "30s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx answers from {url}:\n{out}")

    def ms(key: str) -> float:
        m = re.search(rf"^\s*{key}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    return float(rps.group(1)), ms("50%"), ms("99%")


def wait_up(base: str) -> None:
    for _ in range(200):
        try:
            subprocess.run(["curl", "-sf", "-o", "/dev/null", f"{base}/health"], check=True, timeout=2)
            return
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            time.sleep(0.1)
    raise SystemExit(f"{base} did not come up")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", "--url", dest="url", default=DEFAULT_URL)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--plyr-url", required=True, help="plyr.fm backend seeded from the same dataset")
    ap.add_argument("--db", help="reuse (or create once) this database instead of a scratch one")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--conns", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--paths", nargs="+", default=list(PATHS))
    ap.add_argument("--before", type=Path,
                    help="also serve this checkout (the code before a change) and print it in the same run")
    a = ap.parse_args()
    root = server_url(a.url)
    name = a.db or f"bench_read_plyr_{os.getpid()}"
    with psycopg.connect(root, autocommit=True) as admin:
        fresh = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None
        if fresh:
            admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(root, name)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(url)
        print(asyncio.run(server_line(url)))
        if fresh:
            print(f"seeded {a.dataset.name} through append+project in {asyncio.run(seed(url, a.dataset)):.0f} s")
        bases = {}
        for label, checkout in (("ours", HERE.parent), ("before", a.before)):
            if checkout is None:
                continue
            port = free_port()
            servers.append(subprocess.Popen([sys.executable, str(checkout / "bench" / "read_server.py"), url,
                                             str(port), "nocache"]))
            bases[label] = f"http://127.0.0.1:{port}"
            wait_up(bases[label])
        bases["plyr.fm"] = a.plyr_url
        time.sleep(0.5)
        print(f"\n{'path':20} {'conns':>5} " + " ".join(f"{k + ' req/s':>14} {'p50':>6} {'p99':>7}" for k in bases)
              + "   ratios to plyr.fm   load")
        for path in a.paths:
            for c in a.conns:
                for base in bases.values():
                    wrk(base + path, c, 3)  # warm-up: connections, prepared statements, caches
                got = {k: wrk(base + path, c, a.seconds) for k, base in bases.items()}
                peer = got["plyr.fm"][0]
                ratios = ", ".join(f"{k} {v[0] / max(peer, 1e-9):.1f}x" for k, v in got.items() if k != "plyr.fm")
                print(f"{path:20} {c:5d} " + " ".join(f"{v[0]:14.1f} {v[1]:6.1f} {v[2]:7.1f}" for v in got.values())
                      + f"   {ratios}   {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        if not a.db:
            with psycopg.connect(root, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
