"""Ingest lag (PDS write → row visible in `track`) and the ingester's resident memory, on the real local PDS.

Starts the reference PDS + PLC (`tests.localnet.peer.Localnet`), a scratch database, and the ingester as its own
process, exactly as deployed: `python -m cli ingest` with DATABASE_URL / FIREHOSE_HOSTS / PLC_URL / LOG_FORMAT=json.
Then, per repeat, two phases of `com.atproto.repo.createRecord` writes of `fm.plyr.track`:
  idle  one writer, a random 50-250 ms pause before each write (the pipeline is quiet when a write lands)
  hot   --hot-writers concurrent writers (one account each), 0-10 ms pauses (writes queue behind each other)
For every write, t0 = the createRecord HTTP response is read, and:
  ours      t0 → the `track` row is committed. --detect notify (default): an AFTER INSERT trigger on `track`,
            added to the scratch database only, does pg_notify(uri); NOTIFY is delivered at commit, so the time
            a LISTENing connection receives it is the time the row became visible. --detect poll: a tight
            `SELECT uri FROM track WHERE uri = ANY(pending)` loop on a separate connection, every --poll-ms.
  baseline  t0 → the PDS firehose frame holding that op reaches a bare websocket client (this process), i.e. what
            the PDS alone costs. ours - baseline ≈ what our ingester adds.
Memory: RSS (psutil) of the ingester process, sampled every 0.25 s: idle after start, after the lag run, during
a --burst of writes (applyWrites, 100 tracks per call) and over --settle seconds of steady state after it.
  /work/venv/bin/python bench/lag.py [--writes 100] [--repeat 3] [--burst 3000] [--detect notify|poll]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import libipld
import psutil
import websockets
from scratch import DEFAULT_URL, ROOT, scratch_database, server_line

from core.db.connect import connect
from tests.localnet.peer import Account, Localnet, Xrpc

TARGET_P50_MS, TARGET_P99_MS, TARGET_RSS_MB = 50.0, 250.0, 150.0
TRIGGERS = """
CREATE FUNCTION bench_track_visible() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_notify('bench_track', NEW.uri); RETURN NULL; END $$;
CREATE TRIGGER bench_track_visible AFTER INSERT ON track FOR EACH ROW EXECUTE FUNCTION bench_track_visible();
CREATE FUNCTION bench_log_visible() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_notify('bench_log', 'at://' || NEW.did || '/' || NEW.collection || '/' || NEW.rkey);
   RETURN NULL; END $$;
CREATE TRIGGER bench_log_visible AFTER INSERT ON record_event FOR EACH ROW
    WHEN (NEW.collection = 'fm.plyr.track') EXECUTE FUNCTION bench_log_visible();
"""


class Times:
    def __init__(self) -> None:
        self.resp: dict[str, float] = {}  # createRecord response read
        self.frame: dict[str, float] = {}  # firehose frame received by the bare client
        self.logged: dict[str, float] = {}  # record_event row committed (notify mode only)
        self.visible: dict[str, float] = {}  # track row committed


def track(i: int) -> dict[str, object]:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"$type": "fm.plyr.track", "title": f"bench track {i}", "artist": "bench", "fileType": "mp3",
            "audioUrl": f"https://audio.plyr.fm/audio/{i:08x}.mp3", "duration": 180 + i % 60, "createdAt": now}


async def watch_firehose(ws_url: str, t: Times, ready: asyncio.Event) -> None:
    async with websockets.connect(f"{ws_url}/xrpc/com.atproto.sync.subscribeRepos", max_size=None) as ws:
        ready.set()
        async for msg in ws:
            now = time.perf_counter()
            header, body = libipld.decode_dag_cbor_multi(msg)  # type: ignore[arg-type]
            if header.get("t") == "#commit":
                for op in body["ops"]:
                    t.frame.setdefault(f"at://{body['repo']}/{op['path']}", now)


async def watch_db(url: str, t: Times, detect: str, poll_s: float, ready: asyncio.Event) -> None:
    async with await connect(url, autocommit=True) as conn:
        if detect == "notify":
            await conn.execute("LISTEN bench_track")
            await conn.execute("LISTEN bench_log")
            ready.set()
            async for n in conn.notifies():
                (t.visible if n.channel == "bench_track" else t.logged).setdefault(n.payload, time.perf_counter())
        ready.set()
        while True:
            pending = [u for u in t.resp if u not in t.visible]
            if pending:
                cur = await conn.execute("SELECT uri FROM track WHERE uri = ANY(%s)", (pending,))
                now = time.perf_counter()
                for (uri,) in await cur.fetchall():
                    t.visible[uri] = now
            await asyncio.sleep(poll_s)


class Ingester:
    """`python -m cli ingest` as a child process; stderr (JSON logs) drained by a thread."""

    def __init__(self, db_url: str, net: Localnet) -> None:
        env = dict(os.environ, DATABASE_URL=db_url, FIREHOSE_HOSTS=net.ws_url, PLC_URL=net.plc_url,
                   LOG_FORMAT="json", LOG_LEVEL="info")
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", "ingest"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.ps = psutil.Process(self.proc.pid)
        self.connected = threading.Event()
        self.warnings: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if '"firehose.connected"' in line:
                self.connected.set()
            elif '"level": "warning"' in line or '"level": "error"' in line or "Traceback" in line:
                self.warnings.append(line.strip())

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def sample_rss(ps: psutil.Process, out: list[tuple[str, float]], label: list[str]) -> None:
    while True:
        out.append((label[0], ps.memory_info().rss / 2**20))
        await asyncio.sleep(0.25)


async def writer(xrpc: Xrpc, acct: Account, n: int, pause: tuple[float, float], t: Times,
                 rng: random.Random) -> None:
    for _ in range(n):
        await asyncio.sleep(rng.uniform(*pause))
        r = await xrpc.create(acct, "fm.plyr.track", track(rng.getrandbits(32)))
        t.resp[r["uri"]] = time.perf_counter()


async def settle(t: Times, uris: Sequence[str], limit_s: float = 30.0) -> None:
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        if all(u in t.visible and u in t.frame for u in uris):
            return
        await asyncio.sleep(0.05)
    print(f"  !! {sum(u not in t.visible for u in uris)} writes never became visible", file=sys.stderr)


def pcts(xs: list[float]) -> tuple[float, float, float, float]:
    q = statistics.quantiles(xs, n=100, method="inclusive")
    return q[49], q[94], q[98], max(xs)


def fmt(p: Sequence[float]) -> str:
    return " ".join(f"{v:7.1f}" for v in p)


async def stop(tasks: list[asyncio.Task[None]], ing: Ingester | None) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if ing is not None:
        await asyncio.to_thread(ing.stop)


async def amain(a: argparse.Namespace) -> None:
    rng = random.Random(a.seed)
    net = Localnet()
    print(f"{await server_line(a.database_url)}\nstarting the local PDS + PLC …", flush=True)
    await asyncio.to_thread(net.start)
    print(f"PDS {net.info.get('pdsVersion')} at {net.pds_url}; sequencer idle poll capped at "
          f"{net.info.get('seqPollMaxMs')} ms; detect = {a.detect}")
    tasks: list[asyncio.Task[None]] = []
    ing: Ingester | None = None
    xrpc = Xrpc(net.pds_url, net.info.get("adminPassword", "admin-pass"))
    rss: list[tuple[str, float]] = []
    label = ["startup"]
    try:
        async with scratch_database(a.database_url, "bench_lag") as url:
            async with await connect(url, autocommit=True) as c:
                await c.execute(TRIGGERS)
            ing = Ingester(url, net)
            if not await asyncio.to_thread(ing.connected.wait, 60):
                raise SystemExit("ingester did not connect:\n" + "\n".join(ing.warnings[-20:]))
            t = Times()
            fh_ready, db_ready = asyncio.Event(), asyncio.Event()
            tasks += [asyncio.create_task(watch_firehose(net.ws_url, t, fh_ready)),
                      asyncio.create_task(watch_db(url, t, a.detect, a.poll_ms / 1000, db_ready)),
                      asyncio.create_task(sample_rss(ing.ps, rss, label))]
            await fh_ready.wait()
            await db_ready.wait()
            accts = [await xrpc.create_account(f"bench{i}-{os.getpid()}.test") for i in range(a.hot_writers)]
            await asyncio.sleep(2.0)  # account creation events drain; RSS "startup" samples
            results: dict[str, list[tuple[list[float], ...]]] = {"idle": [], "hot": []}
            label[0] = "lag"
            for rep in range(a.repeat):
                for phase in ("idle", "hot"):
                    before = set(t.resp)
                    if phase == "idle":
                        await writer(xrpc, accts[0], a.writes, (0.05, 0.25), t, rng)
                    else:
                        per = a.writes // a.hot_writers
                        await asyncio.gather(*(writer(xrpc, acct, per, (0.0, 0.01), t, rng) for acct in accts))
                    uris = [u for u in t.resp if u not in before]
                    await settle(t, uris)
                    done = [u for u in uris if u in t.visible and u in t.frame]
                    ours = [1000 * (t.visible[u] - t.resp[u]) for u in done]
                    pds = [1000 * (t.frame[u] - t.resp[u]) for u in done]
                    added = [1000 * (t.visible[u] - t.frame[u]) for u in done]
                    logged = [1000 * (t.logged.get(u, t.visible[u]) - t.resp[u]) for u in done]
                    results[phase].append((ours, pds, added, logged))
                    print(f"repeat {rep + 1} {phase:4s}: {len(done)}/{len(uris)} writes; ours p50/p95/p99/max "
                          f"{fmt(pcts(ours))} ms; PDS firehose {fmt(pcts(pds))} ms", flush=True)
            label[0] = "after-lag"
            await asyncio.sleep(2.0)
            label[0] = "burst"
            t_burst = time.perf_counter()
            async with await connect(url, autocommit=True) as c:
                base = (await (await c.execute("SELECT count(*) FROM track")).fetchone() or (0,))[0]
                for i in range(0, a.burst, 100):
                    writes = [{"$type": "com.atproto.repo.applyWrites#create", "collection": "fm.plyr.track",
                               "value": track(i + j)} for j in range(min(100, a.burst - i))]
                    await xrpc.apply_writes(accts[(i // 100) % len(accts)], writes)
                t_written = time.perf_counter()
                while True:
                    if (await (await c.execute("SELECT count(*) FROM track")).fetchone() or (0,))[0] >= base + a.burst:
                        break
                    await asyncio.sleep(0.05)
            t_seen = time.perf_counter()
            label[0] = "steady"
            await asyncio.sleep(a.settle)
            pds_rss = psutil.Process(net.proc.pid).memory_info().rss / 2**20 if net.proc else float("nan")
            cpu = ing.ps.cpu_times()
            ing_cpu = cpu.user + cpu.system
            await stop(tasks, ing)  # before the scratch database is dropped under the ingester's connections
    finally:
        await stop(tasks, ing)
        await xrpc.aclose()
        net.stop()
    report(a, results, rss, pds_rss, t_written - t_burst, t_seen - t_burst, ing)
    print(f"ingester process CPU over the whole run: {ing_cpu:.1f} s")


def report(a: argparse.Namespace, results: dict[str, list[tuple[list[float], ...]]],
           rss: list[tuple[str, float]], pds_rss: float, write_s: float, seen_s: float, ing: Ingester | None) -> None:
    med = statistics.median
    print(f"\n## lag, ms (median over {a.repeat} repeats of each percentile; {a.writes} writes per phase per repeat; "
          f"detect={a.detect})")
    print(f"{'phase':5s} {'path':34s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'max':>7s}")
    for phase, runs in results.items():
        cols = [[pcts(r[k]) for r in runs] for k in range(4)]
        rows = [[med(p[i] for p in col) for i in range(4)] for col in cols]
        print(f"{phase:5s} {'baseline: response → PDS frame':34s} {fmt(rows[1])}")
        if a.detect == "notify":
            print(f"{phase:5s} {'ours: response → log row committed':34s} {fmt(rows[3])}")
        print(f"{phase:5s} {'ours: response → track row visible':34s} {fmt(rows[0])}")
        print(f"{phase:5s} {'ours minus baseline (per write)':34s} {fmt(rows[2])}")
        print(f"{phase:5s} {'ratio ours / baseline':34s} "
              + " ".join(f"{x / y:6.1f}x" if y > 0 else "    n/a" for x, y in zip(rows[0], rows[1], strict=True)))
        ok = rows[0][0] <= TARGET_P50_MS and rows[0][2] <= TARGET_P99_MS
        print(f"{phase:5s} target p50 <= {TARGET_P50_MS:.0f} ms and p99 <= {TARGET_P99_MS:.0f} ms: "
              f"{'MET' if ok else 'MISSED'}")
    print(f"\n## ingester RSS, MB (psutil, sampled every 0.25 s); burst of {a.burst} tracks: PDS accepted them in "
          f"{write_s:.1f} s, all in `track` after {seen_s:.1f} s ({a.burst / seen_s:.0f} tracks/s)")
    for phase in ("startup", "lag", "after-lag", "burst", "steady"):
        xs = [v for p, v in rss if p == phase]
        if xs:
            print(f"{phase:10s} n={len(xs):4d}  median {med(xs):6.1f}  max {max(xs):6.1f}")
    steady = [v for p, v in rss if p == "steady"]
    print(f"steady state over {a.settle:.0f} s: median {med(steady):.1f} MB, max {max(steady):.1f} MB "
          f"(target <= {TARGET_RSS_MB:.0f} MB: {'MET' if max(steady) <= TARGET_RSS_MB else 'MISSED'}); "
          f"peak overall {max(v for _, v in rss):.1f} MB; for scale, the reference PDS (node) RSS {pds_rss:.0f} MB")
    if ing is not None and ing.warnings:
        print(f"ingester logged {len(ing.warnings)} warnings/errors, last: {ing.warnings[-1][:300]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writes", type=int, default=100, help="createRecord writes per phase per repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--hot-writers", type=int, default=4)
    ap.add_argument("--burst", type=int, default=3000, help="tracks written (applyWrites) before the RSS steady state")
    ap.add_argument("--settle", type=float, default=15.0, help="seconds of steady-state RSS sampling")
    ap.add_argument("--detect", choices=["notify", "poll"], default="notify")
    ap.add_argument("--poll-ms", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--database-url", default=DEFAULT_URL)
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
