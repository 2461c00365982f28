"""Outbound stream: replay throughput from cursor 0 and live delivery lag.

Seeds a scratch database with --events log events in one SQL statement per table (generate_series:
95% `fm.plyr.*` record events with ~560 B track/like records, 5% identity repo events, interleaved in
one seq order), then runs the real app (`appview.app.create_app`, uvicorn, default websocket
implementation) in a separate process and measures, with websocket clients in their own processes:

  replay xN   N consumers connect at cursor=0 together and read until the last seq; events/s each
  live lag    consumers connect without a cursor; this process appends one event at a time
              (`append_batch`, as the ingester does) stamped with time.time(); a consumer records
              receive time minus stamp: p50/p99 of append-to-consumer delivery

Clients do not negotiate permessage-deflate (`compression=None`), as Jetstream v2 never does.
  /work/venv/bin/python bench/stream.py [--events 1000000] [--consumers 1,10] [--lag-events 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time

from scratch import DEFAULT_URL, ROOT, scratch_database, server_line

from core.db.connect import connect
from core.events import RecordEvent
from ingester.eventlog.append import append_batch

SEED_RECORDS = """
INSERT INTO record_event (seq, did, collection, rkey, rev, action, cid, record, source, source_seq, verified)
SELECT g, 'did:plc:' || lpad(to_hex(g %% 5000), 24, 'a'),
       CASE WHEN g %% 3 = 0 THEN 'fm.plyr.like' ELSE 'fm.plyr.track' END,
       'r' || g, '3k' || lpad(to_hex(g), 11, '2'), 'create', 'bafyrei' || md5(g::text),
       jsonb_build_object('$type', 'fm.plyr.track', 'title', 'song ' || g, 'artist', 'artist ' || (g %% 5000),
                          'fileType', 'mp3', 'audioUrl', 'https://audio.plyr.fm/audio/' || md5(g::text) || '.mp3',
                          'createdAt', '2026-11-24T12:00:00.000Z', 'description', repeat('lorem ipsum ', 25)),
       'firehose:bench', g, true
FROM generate_series(1, %(n)s) g WHERE g %% 20 <> 0
"""
SEED_REPOS = """
INSERT INTO repo_event (seq, did, kind, payload, source, source_seq)
SELECT g, 'did:plc:' || lpad(to_hex(g %% 5000), 24, 'a'), 'identity',
       jsonb_build_object('handle', 'u' || g || '.test'), 'firehose:bench', g
FROM generate_series(1, %(n)s) g WHERE g %% 20 = 0
"""


async def seed(url: str, n: int) -> float:
    t = time.perf_counter()
    async with await connect(url, autocommit=True) as conn:
        await conn.execute(SEED_RECORDS, {"n": n})
        await conn.execute(SEED_REPOS, {"n": n})
        await conn.execute("SELECT setval('event_seq', %s)", (n,))
        await conn.execute("VACUUM ANALYZE record_event")
        await conn.execute("VACUUM ANALYZE repo_event")
    return time.perf_counter() - t


# ---- consumer processes ----------------------------------------------------------------------

async def consume_replay(url: str, last: int) -> None:
    from websockets.asyncio.client import connect as ws_connect

    count = 0
    async with ws_connect(url + "?cursor=0", max_size=None, compression=None) as ws:
        t = time.perf_counter()
        while True:
            frame = await ws.recv()
            count += 1
            if count % 50_000 == 0 or count >= last * 0.9:  # parse only now and then, and near the end
                if json.loads(frame)["seq"] >= last:
                    break
        elapsed = time.perf_counter() - t
    print(json.dumps({"events": count, "seconds": elapsed}), flush=True)


async def consume_live(url: str, n: int) -> None:
    from websockets.asyncio.client import connect as ws_connect

    lags = []
    async with ws_connect(url, max_size=None, compression=None) as ws:
        print(json.dumps({"ready": True}), flush=True)
        while len(lags) < n:
            frame = json.loads(await ws.recv())
            if frame["kind"] == "commit":
                lags.append(time.time() - frame["commit"]["record"]["stamp"])
    print(json.dumps({"lags": lags}), flush=True)


def serve(db_url: str, port: int) -> None:
    import uvicorn

    from appview.app import create_app
    from appview.settings import AppviewSettings

    app = create_app(AppviewSettings(db_pool_max=12), db_url)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# ---- driver ----------------------------------------------------------------------------------

async def spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, __file__, *args, stdout=asyncio.subprocess.PIPE,
                                                cwd=ROOT, limit=2**26)


async def run_replay(ws_url: str, consumers: int, last: int) -> list[float]:
    procs = [await spawn("--consume-replay", ws_url, str(last)) for _ in range(consumers)]
    rates = []
    for p in procs:
        out = json.loads((await p.stdout.readline()).decode())  # type: ignore[union-attr]
        await p.wait()
        rates.append(out["events"] / out["seconds"])
    return rates


async def run_lag(db_url: str, ws_url: str, consumers: int, n: int) -> list[float]:
    run = f"{consumers}-{time.time_ns()}"  # fresh keys per run: the log's dedup key drops repeats
    procs = [await spawn("--consume-live", ws_url, str(n)) for _ in range(consumers)]
    for p in procs:
        await p.stdout.readline()  # type: ignore[union-attr]
    await asyncio.sleep(1.0)  # let every handler register with the hub
    async with await connect(db_url) as conn:
        for i in range(n):
            record = {"$type": "fm.plyr.track", "title": f"live {i}", "artist": "a", "fileType": "mp3",
                      "createdAt": "2026-11-24T12:00:00.000Z", "stamp": time.time()}
            await append_batch(conn, [RecordEvent(did="did:plc:live", collection="fm.plyr.track", rkey=f"l{run}-{i}",
                                                  rev=f"3l{i:011d}", action="create", cid="bafyreilive",
                                                  record=record, source="bench", source_seq=None,
                                                  verified=True)])
            await asyncio.sleep(0.005)  # ~200 appends/s, each its own commit and NOTIFY
    lags: list[float] = []
    for p in procs:
        lags += json.loads((await p.stdout.readline()).decode())["lags"]  # type: ignore[union-attr]
        await p.wait()
    return lags


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def main(args: argparse.Namespace) -> None:
    async with scratch_database(args.url, "bench_stream") as db_url:
        print(await server_line(db_url))
        print(f"seeded {args.events:,} log events in {await seed(db_url, args.events):.1f} s")
        port = 18000 + os.getpid() % 1000
        server = await asyncio.create_subprocess_exec(sys.executable, __file__, "--serve", db_url, str(port), cwd=ROOT)
        ws_url = f"ws://127.0.0.1:{port}/xrpc/fm.plyr.sync.subscribeEvents"
        try:
            await asyncio.sleep(3)
            for n in args.consumers:
                rates = await run_replay(ws_url, n, args.events)
                print(f"replay from cursor 0, {n:>2} consumer(s): {statistics.median(rates):,.0f} events/s each "
                      f"(min {min(rates):,.0f}, max {max(rates):,.0f}; {sum(rates):,.0f} events/s total)")
            for n in args.lag_consumers:
                lags = await run_lag(db_url, ws_url, n, args.lag_events)
                print(f"live lag append→consumer, {n:>2} consumer(s), {args.lag_events} appends: "
                      f"p50 {pct(lags, 0.5) * 1000:.1f} ms, p99 {pct(lags, 0.99) * 1000:.1f} ms, "
                      f"max {max(lags) * 1000:.1f} ms")
        finally:
            server.terminate()
            await server.wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["--consume-replay"]:
        asyncio.run(consume_replay(sys.argv[2], int(sys.argv[3])))
    elif sys.argv[1:2] == ["--consume-live"]:
        asyncio.run(consume_live(sys.argv[2], int(sys.argv[3])))
    else:
        parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--database-url", "--url", dest="url", default=DEFAULT_URL)
        parser.add_argument("--events", type=int, default=1_000_000)
        parser.add_argument("--consumers", type=lambda s: [int(x) for x in s.split(",") if x], default=[1, 10])
        parser.add_argument("--lag-consumers", type=lambda s: [int(x) for x in s.split(",") if x], default=[1, 10])
        parser.add_argument("--lag-events", type=int, default=2000)
        asyncio.run(main(parser.parse_args()))
