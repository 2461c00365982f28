"""Backfill from the real local PDS to committed projections: one 5,000-record repo, and many small repos.

Starts the reference PDS + PLC (`tests.localnet.peer.Localnet`) and writes, once:
  big    one account with --records `fm.plyr.track` records (applyWrites, 200 per call)
  small  --repos accounts with --small records each (one applyWrites each)
Then, per repeat, into a fresh scratch database:
  big    wall time of `Backfiller.backfill` (DID doc, getRepo, CAR decode + MST walk + record hash checks, commit
         signature, diff against the log, validation, append) + `Projector.catch_up` (projections committed),
         with the breakdown; baseline: the getRepo download alone (what the PDS costs)
  many   repos/s over the small repos with --concurrency workers (the `appview backfill` path, the same code)
         until every projection row is committed; baseline: the getRepo downloads alone, same concurrency
  /work/venv/bin/python bench/backfill.py [--records 5000] [--repos 200] [--small 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from scratch import DEFAULT_URL, scratch_database, server_line

from core.db.connect import connect
from core.handles import HandleResolver
from core.identity import IdentityResolver
from core.logs import configure_logging
from ingester.backfill import jobs
from ingester.backfill.worker import Backfiller
from ingester.projection.runner import Projector
from ingester.sources.repos import RepoFetcher
from ingester.validate.records import RecordValidator
from ingester.verify.signature import SignatureVerifier
from tests.localnet.peer import Account, Localnet, Xrpc

TARGET_BIG_S = 2.0
NOW = "2026-11-24T12:00:00.000Z"


def track(i: int) -> dict:
    return {"$type": "fm.plyr.track", "title": f"track {i}", "artist": "Bench", "fileType": "mp3",
            "audioUrl": f"https://audio.plyr.fm/{i}.mp3", "duration": 180 + i % 60, "createdAt": NOW}


async def write(xrpc: Xrpc, acct: Account, n: int, batch: int = 200) -> None:
    for start in range(0, n, batch):
        await xrpc.apply_writes(acct, [
            {"$type": "com.atproto.repo.applyWrites#create", "collection": "fm.plyr.track", "value": track(i)}
            for i in range(start, min(n, start + batch))])


class TimedFetcher(RepoFetcher):
    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.fetch_s = 0.0

    async def get_repo(self, pds: str, did: str) -> bytes:
        t = time.perf_counter()
        try:
            return await super().get_repo(pds, did)
        finally:
            self.fetch_s += time.perf_counter() - t


def backfiller(url: str, plc: str, concurrency: int = 8) -> Backfiller:
    resolver = IdentityResolver(plc_url=plc, allow_private=True)  # the local PLC + PDS
    return Backfiller(url, resolver=resolver, verifier=SignatureVerifier(resolver), validator=RecordValidator(),
                      fetcher=TimedFetcher(per_host=concurrency, rate_per_host=0, allow_private=True),
                      handles=HandleResolver(resolver),
                      concurrency=concurrency)


async def download_only(pds: str, dids: list[str], concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient() as client:
        async def one(did: str) -> None:
            async with sem:
                r = await client.get(f"{pds}/xrpc/com.atproto.sync.getRepo", params={"did": did})
                r.raise_for_status()
        t = time.perf_counter()
        await asyncio.gather(*(one(d) for d in dids))
        return time.perf_counter() - t


async def big(db: str, net: Localnet, did: str) -> dict[str, float]:
    async with scratch_database(db, "bench_backfill_big") as url:
        bf = backfiller(url, net.plc_url)
        await bf.resolver.resolve(did)  # the DID doc is usually cached by then (live stream, discovery)
        async with await connect(url) as conn:
            t0 = time.perf_counter()
            outcome = await bf.backfill(conn, did)
            t1 = time.perf_counter()
            projected = await Projector().catch_up(conn)
            t2 = time.perf_counter()
        assert outcome.ok, outcome.reason
        await bf.fetcher.aclose()
        await bf.resolver.aclose()
        return {"total": t2 - t0, "backfill": t1 - t0, "fetch": bf.fetcher.fetch_s,  # type: ignore[attr-defined]
                "project": t2 - t1, "records": outcome.records, "projected": projected}


async def many(db: str, net: Localnet, dids: list[str], concurrency: int) -> dict[str, float]:
    async with scratch_database(db, "bench_backfill_many") as url:
        bf = backfiller(url, net.plc_url, concurrency)
        async with await connect(url) as conn:
            await jobs.enqueue(conn, dids, "bench")
            await bf.load(conn)
        projector = Projector()
        stop = asyncio.Event()

        async def project_live() -> None:
            await projector.run_forever(url, stop)

        ptask = asyncio.create_task(project_live())
        t0 = time.perf_counter()
        counters = await bf.run(asyncio.Event(), until_idle=True)
        async with await connect(url) as conn:
            await projector.catch_up(conn)
        t1 = time.perf_counter()
        stop.set()
        await ptask
        assert counters.failed == 0, counters.failures
        await bf.fetcher.aclose()
        await bf.resolver.aclose()
        return {"wall": t1 - t0, "repos_s": len(dids) / (t1 - t0), "records": counters.records}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", "--db", dest="db", default=DEFAULT_URL)
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--repos", type=int, default=200)
    ap.add_argument("--small", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    configure_logging("console", "warning")
    print(await server_line(args.db))
    net = Localnet()
    net.start()
    try:
        xrpc = Xrpc(net.pds_url, net.info.get("adminPassword", "admin-pass"))
        t = time.perf_counter()
        whale = await xrpc.create_account("whale.test")
        await write(xrpc, whale, args.records)
        small: list[str] = []
        for i in range(args.repos):
            a = await xrpc.create_account(f"minnow{i}.test")
            await write(xrpc, a, args.small)
            small.append(a.did)
        await xrpc.aclose()
        print(f"wrote {args.records} + {args.repos}x{args.small} records in {time.perf_counter() - t:.1f}s")

        bigs = [await big(args.db, net, whale.did) for _ in range(args.repeat)]
        dl = [await download_only(net.pds_url, [whale.did], 1) for _ in range(args.repeat)]
        med = {k: statistics.median(r[k] for r in bigs) for k in bigs[0]}
        print(f"\nbig repo ({int(med['records'])} records, {int(med['projected'])} log events projected), "
              f"median of {args.repeat}:")
        print(f"  ours  getRepo → committed projections: {med['total']:.3f} s  (target ≤ {TARGET_BIG_S} s "
              f"{'✔' if med['total'] <= TARGET_BIG_S else '✘'})")
        print(f"        = backfill {med['backfill']:.3f} s (of which getRepo download {med['fetch']:.3f} s)"
              f" + projection {med['project']:.3f} s;  {med['records'] / med['total']:,.0f} records/s")
        print(f"  baseline getRepo download alone: {statistics.median(dl):.3f} s")

        manys = [await many(args.db, net, small, args.concurrency) for _ in range(args.repeat)]
        dls = [await download_only(net.pds_url, small, args.concurrency) for _ in range(args.repeat)]
        rps = statistics.median(r["repos_s"] for r in manys)
        print(f"\nmany small repos ({args.repos} x {args.small} records, concurrency {args.concurrency}), "
              f"median of {args.repeat}:")
        print(f"  ours  {rps:.1f} repos/s to committed projections "
              f"({statistics.median(r['wall'] for r in manys):.2f} s)")
        print(f"  baseline getRepo downloads alone: {args.repos / statistics.median(dls):.1f} repos/s")
    finally:
        net.stop()


if __name__ == "__main__":
    asyncio.run(main())
