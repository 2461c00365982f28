"""Write → visible through the HTTP API, and the ingester's resident memory, on the real local PDS.

Starts the reference PDS + PLC (`tests.localnet.peer.Localnet`), a scratch database, the ingester and the API
each as its own process, exactly as deployed: `python -m cli ingest` (DATABASE_URL / FIREHOSE_HOSTS / PLC_URL)
and `python -m cli serve` (response cache on, its default). Then, per repeat, phases of
`com.atproto.repo.createRecord` writes of `fm.plyr.track`:
  idle   one writer, a random 50-250 ms pause before each write (the pipeline is quiet when a write lands)
  paced  --rate writes/s on a fixed schedule, round-robin over --hot-writers accounts (issue 14's 20 writes/s)
  hot    --hot-writers concurrent writers (one account each), 0-10 ms pauses (writes queue behind each other)
For every write, t0 = the createRecord HTTP response is read, and the time from t0 until each stage:
  PDS frame  the PDS firehose frame holding that op reaches a bare websocket client (this process): what the
             PDS alone costs, and when our ingester (another client of the same socket) received it
  log        the `record_event` row is committed (append)  ┐ AFTER INSERT triggers on the scratch database only
  table      the `track` row is committed (projection)      ┘ pg_notify(uri), delivered at commit: the same
             instant the projector's own NOTIFY (the API's position watcher wakes on it) is delivered
  REST       `GET /tracks/by-uri?uri=` answers 200 (polled: every pending write, every --api-poll-ms)
  XRPC       `GET /xrpc/fm.plyr.track.getTrack?uri=` answers 200 (polled the same way, its own connection)
"served" = the later of REST and XRPC; "ours" = served − PDS frame (what our ingester and API add).
--baseline-root CHECKOUT: a second ingester + API pair running that checkout's code (e.g. the main branch) follows
the same PDS on its own scratch database, so every write is measured on both under the same load.
Memory: RSS (psutil) of the ingester process, sampled every 0.25 s: idle after start, after the lag run, during
a --burst of writes (applyWrites, 100 tracks per call) and over --settle seconds of steady state after it.
--detect poll replaces the triggers by a tight `SELECT uri FROM track WHERE uri = ANY(pending)` loop.
  .venv/bin/python bench/lag.py [--writes 100] [--repeat 3] [--rate 20] [--burst 3000] [--detect notify|poll]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
import libipld
import psutil
import websockets
from scratch import DEFAULT_URL, ROOT, scratch_database, server_line

from core.db.connect import connect
from tests.localnet.peer import Account, Localnet, Xrpc, free_port

TARGET_P50_MS, TARGET_P99_MS, TARGET_RSS_MB = 20.0, 100.0, 150.0
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
STAGES = ("PDS frame", "log", "table", "REST", "XRPC", "served")


class Times:
    def __init__(self, shared: Times | None = None) -> None:
        # createRecord response read, and the firehose frame received by the bare client: one for every stack
        self.resp: dict[str, float] = shared.resp if shared else {}
        self.frame: dict[str, float] = shared.frame if shared else {}
        self.logged: dict[str, float] = {}  # record_event row committed (notify mode only)
        self.visible: dict[str, float] = {}  # track row committed
        self.rest: dict[str, float] = {}  # /tracks/by-uri answered 200
        self.xrpc: dict[str, float] = {}  # fm.plyr.track.getTrack answered 200
        self.took: dict[str, list[float]] = {"REST": [], "XRPC": []}  # ms each answering 200 took, start to end

    def done(self, uri: str) -> bool:
        return all(uri in d for d in (self.frame, self.visible, self.rest, self.xrpc))

    def stages(self, uri: str) -> list[float]:
        """ms from the createRecord response to each of STAGES."""
        t0, vis = self.resp[uri], self.visible[uri]
        served = max(self.rest[uri], self.xrpc[uri])
        return [1000 * (x - t0) for x in (self.frame[uri], self.logged.get(uri, vis), vis, self.rest[uri],
                                          self.xrpc[uri], served)]


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


class Child:
    """`python -m cli <command>` as a child process; stderr (JSON logs) drained by a thread."""

    def __init__(self, command: str, ready_event: str, env: dict[str, str], root: str) -> None:
        env = dict(os.environ, LOG_FORMAT="json", LOG_LEVEL="info", **env)
        self.command = command
        self.proc = subprocess.Popen([sys.executable, "-m", "cli", command], cwd=root, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.ps = psutil.Process(self.proc.pid)
        self.ready_event = f'"{ready_event}"'
        self.connected = threading.Event()
        self.warnings: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if self.ready_event in line:
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


async def watch_api(base: str, path: str, t: Times, dest: dict[str, float], detect: str, poll_s: float,
                    took: list[float]) -> None:
    """Poll `path?uri=` for every write not yet served, as a client waiting for its track would, but only from
    the moment the API could first serve it: the `track` row committed (--detect notify), else the PDS frame
    reached us (our ingester reads the same socket). Earlier polls cannot succeed (the API reads that table), so
    no 200 is seen any earlier for skipping them, and the CPU they would burn stays with the path under test."""
    gate = t.visible if detect == "notify" else t.frame
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while True:
            # A pause after every request, not every round: the polls' load on the API must not grow with the
            # number of writes pending (it did, and the API then spent its time answering 404s).
            for uri in [u for u in t.resp if u not in dest and u in gate] or [""]:
                if uri:
                    sent = time.perf_counter()
                    r = await http.get(path, params={"uri": uri})
                    if r.status_code == 200:
                        dest[uri] = time.perf_counter()
                        took.append(1000 * (dest[uri] - sent))
                    elif r.status_code not in (400, 404):
                        raise SystemExit(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
                await asyncio.sleep(poll_s)


async def writer(xrpc: Xrpc, acct: Account, n: int, pause: tuple[float, float], t: Times,
                 rng: random.Random) -> None:
    for _ in range(n):
        await asyncio.sleep(rng.uniform(*pause))
        await write_one(xrpc, acct, t, rng)


async def write_one(xrpc: Xrpc, acct: Account, t: Times, rng: random.Random) -> None:
    r = await xrpc.create(acct, "fm.plyr.track", track(rng.getrandbits(32)))
    t.resp[r["uri"]] = time.perf_counter()


async def paced(xrpc: Xrpc, accts: Sequence[Account], n: int, rate: float, t: Times, rng: random.Random) -> None:
    """`n` writes started at a fixed `rate` whatever each one's latency (round-robin over the accounts)."""
    start, writes = time.perf_counter(), []
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        writes.append(asyncio.create_task(write_one(xrpc, accts[i % len(accts)], t, rng)))
    await asyncio.gather(*writes)


async def settle(t: Times, uris: Sequence[str], limit_s: float = 30.0) -> None:
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        if all(t.done(u) for u in uris):
            return
        await asyncio.sleep(0.05)
    print(f"  !! {sum(not t.done(u) for u in uris)} writes never became visible (REST {len(t.rest)}, "
          f"XRPC {len(t.xrpc)}, table {len(t.visible)})", file=sys.stderr)


def pcts(xs: list[float]) -> tuple[float, float, float, float]:
    q = statistics.quantiles(xs, n=100, method="inclusive")
    return q[49], q[94], q[98], max(xs)


def fmt(p: Sequence[float]) -> str:
    return " ".join(f"{v:7.1f}" for v in p)


async def stop(tasks: list[asyncio.Task[None]], *children: Child | None) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for child in children:
        if child is not None:
            await asyncio.to_thread(child.stop)


Run = list[list[float]]  # per write: ms to each of STAGES


class Stack:
    """One ingester + API pair on its own scratch database, following the shared PDS; `root` is the checkout
    whose code they run (a baseline stack runs another checkout's, measured on the very same writes)."""

    def __init__(self, name: str, root: str) -> None:
        self.name, self.root = name, root
        self.ing: Child | None = None
        self.api: Child | None = None
        self.t = Times()
        self.url = ""
        self.base = ""  # the API's
        self.results: dict[str, list[Run]] = {}
        self.api_side: dict[str, float] = {}  # route → mean seconds the API itself took (its own histogram)

    async def start(self, a: argparse.Namespace, net: Localnet, url: str, shared: Times,
                    tasks: list[asyncio.Task[None]]) -> None:
        self.url, self.t = url, Times(shared)
        if a.detect == "notify":
            async with await connect(url, autocommit=True) as c:
                await c.execute(TRIGGERS)
        self.ing = Child("ingest", "firehose.connected",
                         {"DATABASE_URL": url, "FIREHOSE_HOSTS": net.ws_url, "PLC_URL": net.plc_url,
                          "OUTBOUND_ALLOW_PRIVATE": "true"}, self.root)  # the local PDS and PLC are on loopback
        port = free_port()
        self.api = Child("serve", "api.listening", {"DATABASE_URL": url, "PORT": str(port), "RESPONSE_CACHE": "true"},
                         self.root)
        for child, what in ((self.ing, "ingester did not connect"), (self.api, "API did not start")):
            if not await asyncio.to_thread(child.connected.wait, 60):
                raise SystemExit(f"{self.name}: {what}:\n" + "\n".join(child.warnings[-20:]))
        db_ready = asyncio.Event()
        base = self.base = f"http://127.0.0.1:{port}"
        tasks += [asyncio.create_task(watch_db(url, self.t, a.detect, a.poll_ms / 1000, db_ready)),
                  asyncio.create_task(watch_api(base, "/tracks/by-uri", self.t, self.t.rest, a.detect,
                                                a.api_poll_ms / 1000, self.t.took["REST"])),
                  asyncio.create_task(watch_api(base, "/xrpc/fm.plyr.track.getTrack", self.t, self.t.xrpc,
                                                a.detect, a.api_poll_ms / 1000, self.t.took["XRPC"]))]
        await db_ready.wait()

    def children(self) -> tuple[Child | None, Child | None]:
        return self.ing, self.api

    async def read_api_side(self) -> None:
        """The API's own mean latency per polled route, from its /metrics (no client or scheduling in it)."""
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as http:
            text = (await http.get("/metrics")).text
        sums: dict[str, list[float]] = {}
        for line in text.splitlines():
            for kind in ("sum", "count"):
                if line.startswith(f"appview_http_request_seconds_{kind}{{") and 'method="GET"' in line:
                    route = line.split('route="', 1)[1].split('"', 1)[0]
                    sums.setdefault(route, [0.0, 0.0])[kind == "count"] += float(line.rsplit(" ", 1)[1])
        self.api_side = {r: s / n for r, (s, n) in sums.items() if n}


async def settle_all(stacks: Sequence[Stack], uris: Sequence[str]) -> None:
    for s in stacks:
        await settle(s.t, uris)


async def amain(a: argparse.Namespace) -> None:
    rng = random.Random(a.seed)
    net = Localnet()
    print(f"{await server_line(a.database_url)}\nstarting the local PDS + PLC …", flush=True)
    await asyncio.to_thread(net.start)
    print(f"PDS {net.info.get('pdsVersion')} at {net.pds_url}; sequencer idle poll capped at "
          f"{net.info.get('seqPollMaxMs')} ms; detect = {a.detect}; load average {os.getloadavg()[0]:.2f}")
    stacks = [Stack("ours", str(ROOT))]
    if a.baseline_root:
        stacks.insert(0, Stack("baseline", a.baseline_root))
    ours = stacks[-1]
    tasks: list[asyncio.Task[None]] = []
    xrpc = Xrpc(net.pds_url, net.info.get("adminPassword", "admin-pass"))
    rss: list[tuple[str, float]] = []
    label = ["startup"]
    loads: list[float] = []
    shared = Times()
    try:
        async with contextlib.AsyncExitStack() as dbs:
            for s in stacks:
                url = await dbs.enter_async_context(scratch_database(a.database_url, f"bench_lag_{s.name}", s.root))
                await s.start(a, net, url, shared, tasks)
            assert ours.ing is not None
            fh_ready = asyncio.Event()
            tasks += [asyncio.create_task(watch_firehose(net.ws_url, shared, fh_ready)),
                      asyncio.create_task(sample_rss(ours.ing.ps, rss, label))]
            await fh_ready.wait()
            accts = [await xrpc.create_account(f"bench{i}-{os.getpid()}.test") for i in range(a.hot_writers)]
            for acct in accts:  # first commit of a repo: identity resolution, not part of the measure
                await write_one(xrpc, acct, shared, rng)
            await settle_all(stacks, list(shared.resp))
            await asyncio.sleep(1.0)  # RSS "startup" samples
            for s in stacks:
                s.results = {p: [] for p in a.phases.split(",")}
            label[0] = "lag"
            for rep in range(a.repeat):
                for phase in ours.results:
                    before = set(shared.resp)
                    loads.append(os.getloadavg()[0])
                    if phase == "idle":
                        await writer(xrpc, accts[0], a.writes, (0.05, 0.25), shared, rng)
                    elif phase == "paced":
                        await paced(xrpc, accts, a.writes, a.rate, shared, rng)
                    else:
                        per = a.writes // a.hot_writers
                        await asyncio.gather(*(writer(xrpc, acct, per, (0.0, 0.01), shared, rng)
                                               for acct in accts))
                    uris = [u for u in shared.resp if u not in before]
                    await settle_all(stacks, uris)
                    line = []
                    for s in stacks:
                        run = [s.t.stages(u) for u in uris if s.t.done(u)]
                        s.results[phase].append(run)
                        line.append(f"{s.name} served p50/p99 {fmt(pcts([r[5] for r in run])[::2])} ms")
                    frames = [1000 * (shared.frame[u] - shared.resp[u]) for u in uris if u in shared.frame]
                    print(f"repeat {rep + 1} {phase:5s}: {len(uris)} writes; " + "; ".join(line)
                          + f"; PDS frame p50/p99 {fmt(pcts(frames)[::2])} ms; load {os.getloadavg()[0]:.2f}",
                          flush=True)
            for s in stacks:
                await s.read_api_side()
            label[0] = "after-lag"
            await asyncio.sleep(2.0)
            label[0] = "burst"
            t_burst = time.perf_counter()
            async with await connect(ours.url, autocommit=True) as c:
                base_n = (await (await c.execute("SELECT count(*) FROM track")).fetchone() or (0,))[0]
                for i in range(0, a.burst, 100):
                    writes = [{"$type": "com.atproto.repo.applyWrites#create", "collection": "fm.plyr.track",
                               "value": track(i + j)} for j in range(min(100, a.burst - i))]
                    await xrpc.apply_writes(accts[(i // 100) % len(accts)], writes)
                t_written = time.perf_counter()
                while True:
                    n = (await (await c.execute("SELECT count(*) FROM track")).fetchone() or (0,))[0]
                    if n >= base_n + a.burst:
                        break
                    await asyncio.sleep(0.05)
            t_seen = time.perf_counter()
            label[0] = "steady"
            await asyncio.sleep(a.settle)
            pds_rss = psutil.Process(net.proc.pid).memory_info().rss / 2**20 if net.proc else float("nan")
            cpu = ours.ing.ps.cpu_times()
            ing_cpu = cpu.user + cpu.system
            # before the scratch databases are dropped under their connections
            await stop(tasks, *(c for s in stacks for c in s.children()))
    finally:
        await stop(tasks, *(c for s in stacks for c in s.children()))
        for s in stacks:
            for child in filter(None, s.children()):
                for w in child.warnings[-5:]:
                    print(f"  {s.name} {child.command}: {w[:600]}", file=sys.stderr)
        await xrpc.aclose()
        net.stop()
    report(a, stacks, loads, rss, pds_rss, t_written - t_burst, t_seen - t_burst)
    print(f"ingester process CPU over the whole run: {ing_cpu:.1f} s")


def report(a: argparse.Namespace, stacks: Sequence[Stack], loads: list[float], rss: list[tuple[str, float]],
           pds_rss: float, write_s: float, seen_s: float) -> None:
    med = statistics.median
    print(f"\n## write → visible, ms from the createRecord response (median over {a.repeat} repeats of each "
          f"percentile; {a.writes} writes per phase per repeat; paced = {a.rate:g} writes/s; API polled every "
          f"{a.api_poll_ms:g} ms; load average during the phases {min(loads):.1f}-{max(loads):.1f})")
    if len(stacks) > 1:
        print(f"stacks on the same writes: {', '.join(f'{s.name} = {s.root}' for s in stacks)}")
    print(f"{'phase':5s} {'stack':8s} {'stage':36s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'max':>7s}")
    names = ["baseline: PDS firehose frame", "log row committed (append)", "track row committed (project)",
             "served: GET /tracks/by-uri", "served: XRPC getTrack", "served: both"]
    served: dict[str, list[float]] = {}
    for phase in stacks[-1].results:
        for s in stacks:
            runs = [r for r in s.results[phase] if r]
            if not runs:
                continue
            rows = [[med(pcts([w[k] for w in r])[i] for r in runs) for i in range(4)] for k in range(len(STAGES))]
            ours = [med(pcts([w[5] - w[0] for w in r])[i] for r in runs) for i in range(4)]
            for name, row in zip(names, rows, strict=True):
                if (a.detect == "notify" or name != names[1]) and (name != names[0] or s is stacks[0]):
                    print(f"{phase:5s} {s.name:8s} {name:36s} {fmt(row)}")
            print(f"{phase:5s} {s.name:8s} {'ours: served − PDS frame (per write)':36s} {fmt(ours)}")
            print(f"{phase:5s} {s.name:8s} {'ratio served / PDS frame':36s} "
                  + " ".join(f"{x / y:6.1f}x" if y > 0 else "    n/a" for x, y in zip(rows[5], rows[0], strict=True)))
            served[s.name] = rows[5]
            ok = rows[5][0] <= TARGET_P50_MS and rows[5][2] <= TARGET_P99_MS
            print(f"{phase:5s} {s.name:8s} target served p50 <= {TARGET_P50_MS:.0f} ms and p99 <= "
                  f"{TARGET_P99_MS:.0f} ms: {'MET' if ok else 'MISSED'}")
        if "baseline" in served and "ours" in served:
            print(f"{phase:5s} {'':8s} {'ratio ours / baseline (served)':36s} " + " ".join(
                f"{x / y:6.2f}x" if y > 0 else "    n/a" for x, y in zip(served["ours"], served["baseline"],
                                                                          strict=True)))
    for s in stacks:  # how much of "served" is the answering request itself (the rest: waiting to be asked)
        print(f"{'all':5s} {s.name:8s} {'the 200 request itself: REST':36s} {fmt(pcts(s.t.took['REST']))}")
        print(f"{'all':5s} {s.name:8s} {'the 200 request itself: XRPC':36s} {fmt(pcts(s.t.took['XRPC']))}")
        inside = {r: round(1000 * v, 2) for r, v in s.api_side.items() if "track" in r}
        print(f"{'all':5s} {s.name:8s} mean inside the API (its own histogram, every poll incl. 404s), ms: {inside}")
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
    for s in stacks:
        for child in s.children():
            if child is not None and child.warnings:
                print(f"{s.name} {child.command} logged {len(child.warnings)} warnings/errors, last: "
                      f"{child.warnings[-1][:300]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writes", type=int, default=100, help="createRecord writes per phase per repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--phases", default="idle,paced,hot", help="comma list of idle, paced, hot")
    ap.add_argument("--rate", type=float, default=20.0, help="writes/s of the paced phase")
    ap.add_argument("--hot-writers", type=int, default=4)
    ap.add_argument("--burst", type=int, default=3000, help="tracks written (applyWrites) before the RSS steady state")
    ap.add_argument("--settle", type=float, default=15.0, help="seconds of steady-state RSS sampling")
    ap.add_argument("--detect", choices=["notify", "poll"], default="notify")
    ap.add_argument("--poll-ms", type=float, default=2.0)
    ap.add_argument("--api-poll-ms", type=float, default=2.0, help="pause after each poll of the API")
    ap.add_argument("--baseline-root", default="", help="another checkout (e.g. the main branch's) whose ingester "
                    "and API follow the same PDS on their own scratch database: a same-run baseline, same writes")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--database-url", default=DEFAULT_URL)
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
