"""Blob mirror throughput into each store, and /audio Range throughput against Starlette's FileResponse.

Workload: --blobs audio blobs of --min-mb..--max-mb (random bytes, sizes spread evenly, seeded) uploaded to a
real reference PDS (tests/localnet), each referenced by an fm.plyr.track record so the PDS keeps it.

  mirror/<store>  `BlobMirror.drain()` from a freshly seeded track projection (the records' blob refs, the
                  actor's PDS) until every blob is mirrored: fetch getBlob, hash while spooling, CID check,
                  put into the store. Stores: local (filesystem) and s3 (moto's ThreadedMotoServer in this
                  process, path-style, via aiobotocore). Mirror settings are the defaults unless overridden.
  audio/<server>  --requests GETs with `Range: bytes=o-(o+--range-kb KB-1)` at seeded random offsets,
                  --concurrency keep-alive connections from an aiohttp client (this process), against
                    ours:  the app's /audio/{cid} (DB lookup + fallback decision + our Range response)
                    plain: Starlette FileResponse on the same files (no DB), the floor
                  each server a uvicorn subprocess (uvloop, httptools); rounds alternate between them.
Median of --repeat. Every mirrored blob is checked by the mirror itself (CID); every 50th Range response is
compared with the file's bytes.
  /work/venv/bin/python bench/mirror.py [--blobs 200] [--repeat 3] [--requests 3000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp  # noqa: E402
import anyio  # noqa: E402
import boto3  # noqa: E402
from scratch import DEFAULT_URL, ROOT, scratch_database, server_line

from core.blobstore import LocalStore, open_store  # noqa: E402
from core.db.connect import connect  # noqa: E402
from core.logs import configure_logging  # noqa: E402
from ingester.blobs.mirror import BlobMirror  # noqa: E402
from ingester.settings import IngesterSettings  # noqa: E402
from tests.e2e.conftest import wav_bytes  # noqa: E402
from tests.localnet.peer import Localnet, Xrpc  # noqa: E402

MB = 1_000_000
NOW = "2026-11-24T12:00:00.000Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def publish(net: Localnet, n: int, lo: int, hi: int, seed: int) -> tuple[str, list[dict[str, Any]]]:
    rng = random.Random(seed)
    xrpc = Xrpc(net.pds_url)
    acct = await xrpc.create_account(f"bench{uuid.uuid4().hex[:6]}.test")
    head = wav_bytes()
    blobs = []
    for i in range(n):
        size = lo + (hi - lo) * i // max(n - 1, 1)
        blob = await xrpc.upload_blob(acct, head + rng.randbytes(size - len(head)), "audio/wav")
        await xrpc.create(acct, "fm.plyr.track", {"$type": "fm.plyr.track", "title": f"bench {i}", "artist": "B",
                                                  "fileType": "wav", "createdAt": NOW, "audioBlob": blob})
        blobs.append(blob)
    await xrpc.aclose()
    return acct.did, blobs


async def seed(url: str, did: str, pds: str, blobs: list[dict[str, Any]]) -> None:
    async with await connect(url) as conn, conn.cursor() as cur:
        await cur.execute("INSERT INTO actor (did, pds, status, active, seq) VALUES (%s, %s, 'active', true, 1)",
                          (did, pds))
        for i, b in enumerate(blobs):
            await cur.execute(
                "INSERT INTO track (id, uri, did, rkey, cid, rev, title, artist, file_type, audio_blob_cid,"
                " audio_blob_mime, audio_blob_size, features, self_labels, created_at, indexed_at, record, sort_at)"
                " VALUES"
                " (%s, %s, %s, 'k', 'c', 'r', 't', 'a', 'wav', %s, %s, %s, '[]', '[]', %s, now(), '{}', now())",
                (i + 1, f"at://{did}/fm.plyr.track/{i}", did, b["ref"]["$link"], b["mimeType"], b["size"], NOW))
        await conn.commit()


async def mirror_once(url: str, settings: IngesterSettings, n: int) -> float:
    store = await open_store(settings)
    mirror = BlobMirror(settings, url, store)
    started = time.perf_counter()
    try:
        await mirror.drain()
    finally:
        elapsed = time.perf_counter() - started
        await mirror.aclose()
        await store.aclose()
    async with await connect(url) as conn:
        cur = await conn.execute("SELECT count(*) FROM blob WHERE state = 'mirrored'")
        row = await cur.fetchone()
    assert row is not None and row[0] == n, f"only {row} of {n} mirrored"
    return elapsed


async def load(base: str, blobs: list[dict[str, Any]], store: LocalStore, requests: int, conc: int,
               range_bytes: int, seed: int) -> float:
    rng = random.Random(seed)
    plan = []
    for _ in range(requests):
        b = blobs[rng.randrange(len(blobs))]
        off = rng.randrange(0, b["size"] - range_bytes)
        plan.append((b["ref"]["$link"], off))
    queue = iter(enumerate(plan))
    connector = aiohttp.TCPConnector(limit=conc)

    async def worker(session: aiohttp.ClientSession) -> None:
        for i, (cid, off) in queue:
            async with session.get(f"{base}/{cid}", headers={"range": f"bytes={off}-{off + range_bytes - 1}"}) as r:
                body = await r.read()
                assert r.status == 206 and len(body) == range_bytes, (r.status, len(body))
                if i % 50 == 0:
                    async with await anyio.open_file(store.path_for(cid), "rb") as f:
                        await f.seek(off)
                        assert body == await f.read(range_bytes)

    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(conc)))
        return requests / (time.perf_counter() - started)


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(200):
            try:
                async with s.get(url) as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--blobs", type=int, default=200)
    p.add_argument("--min-mb", type=float, default=1.0)
    p.add_argument("--max-mb", type=float, default=5.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--range-kb", type=int, default=256)
    p.add_argument("--fetch-concurrency", type=int, default=None)
    p.add_argument("--per-pds", type=int, default=None)
    p.add_argument("--database-url", "--db", dest="db", default=DEFAULT_URL)
    p.add_argument("--stores", default="local,s3")
    a = p.parse_args()
    configure_logging("json", "warning")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="plyr-bench-mirror-"))
    net = Localnet()
    net.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        t0 = time.perf_counter()
        did, blobs = await publish(net, a.blobs, int(a.min_mb * MB), int(a.max_mb * MB), seed=7)
        total = sum(b["size"] for b in blobs)
        print(f"# {await server_line(a.db)}")
        print(f"# {a.blobs} blobs, {total / MB:.0f} MB ({a.min_mb}-{a.max_mb} MB each) published to the local PDS "
              f"in {time.perf_counter() - t0:.0f} s")
        overrides: dict[str, Any] = {"outbound_allow_private": True, "blob_scan_interval_s": 0.05}
        if a.fetch_concurrency:
            overrides["blob_fetch_concurrency"] = a.fetch_concurrency
        if a.per_pds:
            overrides["blob_per_pds_concurrency"] = a.per_pds
        moto = None
        results: dict[str, list[float]] = {}
        for kind in a.stores.split(","):
            extra: dict[str, Any] = {}
            if kind == "s3":
                from moto.server import ThreadedMotoServer

                moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
                moto.start()
                host, port = moto.get_host_and_port()
                endpoint = f"http://{host}:{port}"
                extra = {"s3_endpoint_url": endpoint, "s3_access_key_id": "x", "s3_secret_access_key": "x"}
            for r in range(a.repeat):
                data_dir = work / f"{kind}-{r}"
                if kind == "s3":
                    bucket = f"bench-{r}-{uuid.uuid4().hex[:6]}"
                    boto3.client("s3", endpoint_url=extra["s3_endpoint_url"], aws_access_key_id="x",
                                 aws_secret_access_key="x", region_name="us-east-1").create_bucket(Bucket=bucket)
                    extra["s3_bucket"] = bucket
                settings = IngesterSettings(APPVIEW_DATA_DIR=data_dir, **overrides, **extra)
                async with scratch_database(a.db, f"bench_mirror_{kind}") as url:
                    await seed(url, did, net.pds_url, blobs)
                    elapsed = await mirror_once(url, settings, len(blobs))
                    results.setdefault(kind, []).append(elapsed)
                    print(f"  mirror/{kind} run {r + 1}: {elapsed:.2f} s", file=sys.stderr)
                    if kind == "local" and r == a.repeat - 1:
                        await audio_phase(a, url, data_dir, blobs, procs)
                if kind == "local" and r < a.repeat - 1:
                    shutil.rmtree(data_dir, ignore_errors=True)
        if moto is not None:
            moto.stop()
        s = results
        defaults = IngesterSettings(**overrides)
        print(f"\n## mirror: {a.blobs} blobs, {total / MB:.0f} MB; fetch concurrency "
              f"{defaults.blob_fetch_concurrency}, per PDS {defaults.blob_per_pds_concurrency}; median of {a.repeat}")
        print("| store | seconds | blobs/s | MB/s |\n|---|---|---|---|")
        for kind, times in s.items():
            t = median(times)
            print(f"| {kind} | {t:.2f} | {len(blobs) / t:.1f} | {total / MB / t:.1f} |")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        net.stop()
        shutil.rmtree(work, ignore_errors=True)


async def audio_phase(a: argparse.Namespace, url: str, data_dir: Path, blobs: list[dict[str, Any]],
                      procs: list[subprocess.Popen[bytes]]) -> None:
    servers = {}
    for kind in ("ours", "plain"):
        port = free_port()
        cmd = [sys.executable, str(ROOT / "bench" / "audio_servers.py"), kind, "--port", str(port), "--db", url,
               "--data-dir", str(data_dir)]
        procs.append(subprocess.Popen(cmd))  # noqa: ASYNC220
        servers[kind] = f"http://127.0.0.1:{port}/" + ("audio" if kind == "ours" else "file")
        await wait_ready(f"http://127.0.0.1:{port}/health")
    store = LocalStore(data_dir / "blobs")
    rng_bytes = a.range_kb * 1024
    for base in servers.values():  # warm-up
        await load(base, blobs, store, 200, a.concurrency, rng_bytes, seed=1)
    rates: dict[str, list[float]] = {"ours": [], "plain": []}
    for r in range(a.repeat):
        for kind, base in servers.items():
            rates[kind].append(await load(base, blobs, store, a.requests, a.concurrency, rng_bytes, seed=100 + r))
            print(f"  audio/{kind} run {r + 1}: {rates[kind][-1]:.0f} req/s", file=sys.stderr)
    ours, plain = median(rates["ours"]), median(rates["plain"])
    print(f"\n## /audio Range: {a.requests} requests of {a.range_kb} KB, {a.concurrency} connections, "
          f"aiohttp client; median of {a.repeat}")
    print("| server | req/s | MB/s |\n|---|---|---|")
    print(f"| ours: /audio/{{cid}} (DB lookup + Range) | {ours:.0f} | {ours * rng_bytes / MB:.0f} |")
    print(f"| plain: Starlette FileResponse | {plain:.0f} | {plain * rng_bytes / MB:.0f} |")
    print(f"ratio ours / FileResponse: {ours / plain:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
