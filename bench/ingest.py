"""Committed record ops/s into the log + projections: our write path vs a naive per-event ingester.

Workload (bench/signed_frames.py): ~30k fm.plyr ops (tracks, likes, comments, lists; creates plus some
updates/deletes) in ~25k `#commit` frames for 450 repos, signed with real k256 keys and chained (since /
prevData). DID docs are served from memory (`IdentityResolver._fetch` overridden; cache logic unchanged).

  ours (a)  `Ingest.handle` in --batch frame batches: decode → verify sig → chain → validate → `append_batch`
  ours (p)  then `Projector.catch_up` from 0 to the head (its default 5,000-event pages)
  ours (b)  (a) + (p) end to end, i.e. ops / (append time + projection time)
  ours (b2) append with `Projector.run_forever` running alongside (as `Ingester` runs them), until it is done
  warm      (a), (p), (b) once every repo's first commit (and its identity event) is in: steady-state traffic
  naive (c) per op: decode, one INSERT into record_event, one upsert (or delete) of the projection row,
            COMMIT; no verification (what a simple ingester does). --naive-ops N: only the first N ops.
  limit (l) after the storage run: a plain binary COPY of the same rows (log + every projection table) into
            unindexed tables (bench/limit.py): the machine's limit for writing them
  rebuild   `appview rebuild` of that same log (events/s; its digest must equal the live one)
The last line is `limit ratio: storage X.XX, rebuild Y.YY` (storage ops/s and rebuild events/s ÷ the limit).
--rows storage runs only (s), the limit and the rebuild.
Each run starts from empty tables (TRUNCATE + CHECKPOINT). Median of --repeat; prints figures only. CPU per op
is split into this process (psutil/process_time) and the scratch database's backends (psutil on their pids).
  /work/venv/bin/python bench/ingest.py [--tracks 4500] [--batch 1000] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import pstats
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from limit import Limit, copy_limit
from psycopg.types.json import Jsonb
from scratch import DEFAULT_URL, Meter, Phase, scratch_database, server_line
from signed_frames import Workload, build

from core.db.connect import connect
from core.db.schema import metadata
from core.events import Commit, LoggedRecord
from core.identity import DidInfo, IdentityResolver, parse_did_doc
from core.logs import configure_logging
from core.process import tune_gc
from ingester.decode.frames import decode_frame
from ingester.eventlog.append import AppendResult, append_batch
from ingester.pipeline.ingest import Ingest
from ingester.projection import comments, likes, lists, tracks
from ingester.projection.base import Put
from ingester.projection.digest import digest
from ingester.projection.rebuild import rebuild
from ingester.projection.runner import Projector
from ingester.validate.records import RecordValidator
from ingester.verify.signature import SignatureVerifier

TARGET_OPS, TARGET_RATIO = 20_000, 10.0


class MemoryResolver(IdentityResolver):
    """Serves DID docs from a dict instead of PLC; caching, TTL and de-duplication are the real ones."""

    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        super().__init__(plc_url="https://plc.invalid")
        self.docs = docs

    async def _fetch(self, did: str) -> DidInfo:
        self.fetches += 1
        return parse_did_doc(did, self.docs[did])


async def reset(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with await connect(url, autocommit=True) as conn:
        await conn.execute(f"TRUNCATE {tables}")
        await conn.execute("ALTER SEQUENCE event_seq RESTART")
        await conn.execute("CHECKPOINT")


async def counts(url: str) -> str:
    async with await connect(url) as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM record_event), (SELECT count(*) FROM record_event WHERE verified),"
            " (SELECT count(*) FROM repo_state WHERE sync_status = 'synchronized'),"
            " (SELECT count(*) FROM track), (SELECT count(*) FROM \"like\"), (SELECT count(*) FROM comment),"
            " (SELECT count(*) FROM list), (SELECT count(*) FROM list_item)")
        r = await cur.fetchone()
    assert r is not None
    return (f"record_event {r[0]} (verified {r[1]}), synchronized repos {r[2]}; track {r[3]}, like {r[4]}, "
            f"comment {r[5]}, list {r[6]}, list_item {r[7]}")


async def run_ours(url: str, w: Workload, batch: int, validator: RecordValidator, *, warm: bool = False,
                   concurrent: bool = False, profile: cProfile.Profile | None = None) -> tuple[Phase, Phase]:
    """(append, projection). Sequential: append all, then `catch_up`. Concurrent: `run_forever` runs alongside
    (as `Ingester` does) and the projection phase is how long it needs after the last append. `warm`: every
    repo's first commit is ingested and projected before the clock starts (steady state: no first sights)."""
    resolver = MemoryResolver(w.did_docs)
    conn, pconn, mconn = await connect(url), await connect(url, autocommit=True), await connect(url, autocommit=True)
    ingest = Ingest(conn, source="firehose:bench", resolver=resolver, verifier=SignatureVerifier(resolver),
                    validator=validator)
    await ingest.load_tracked()
    projector, stop, meter = Projector(), asyncio.Event(), Meter(mconn)
    frames = w.frames
    if warm:
        await ingest.handle([f for i, f in enumerate(w.frames) if i in w.first])
        await ingest.drain()
        await projector.catch_up(pconn)
        frames = [f for i, f in enumerate(w.frames) if i not in w.first]
    head = await projector.position(pconn)
    follower = asyncio.create_task(projector.run_forever(url, stop)) if concurrent else None
    await asyncio.sleep(0.2)  # let the follower connect and LISTEN
    gc.collect()
    try:
        if profile:
            profile.enable()
        s0 = await meter.snap()
        for i in range(0, len(frames), batch):
            head += (await ingest.handle(frames[i:i + batch])).appended
            head += (await ingest.drain()).appended  # first sights wait for their (instant) DID docs
        s1 = await meter.snap()
        if follower is None:
            await projector.catch_up(pconn)
        else:
            while True:  # seq restarts at 1 on reset, so the head is the number of rows appended
                if await projector.position(pconn) >= head:
                    break
                await asyncio.sleep(0.002)
        s2 = await meter.snap()
        if profile:
            profile.disable()
    finally:
        stop.set()
        if follower is not None:
            await follower
        for c in (conn, pconn, mconn):
            await c.close()
        await resolver.aclose()
    return Meter.phase(s0, s1), Meter.phase(s1, s2)


# ---- the storage path alone: the same appends, with decode/verify/validate done beforehand ----------

Batch = tuple[list[Any], tuple[str, int] | None, list[Any], list[Any]]


async def capture(url: str, w: Workload, batch: int, validator: RecordValidator) -> list[Batch]:
    """Run the real pipeline once (untimed) with `append_batch` swapped for a recorder."""
    import ingester.pipeline.ingest as pipeline

    captured: list[Batch] = []

    async def record(conn: Any, events: Any, *, cursor: Any = None, repo_states: Any = (),
                     rejects: Any = ()) -> AppendResult:
        captured.append((list(events), cursor, list(repo_states), list(rejects)))
        return AppendResult(len(events), 0, 0, None)

    resolver = MemoryResolver(w.did_docs)
    real, pipeline.append_batch = pipeline.append_batch, record  # type: ignore[assignment]
    try:
        async with await connect(url) as conn:
            ingest = Ingest(conn, source="firehose:bench", resolver=resolver,
                            verifier=SignatureVerifier(resolver), validator=validator)
            for i in range(0, len(w.frames), batch):
                await ingest.handle(w.frames[i:i + batch])
                await ingest.drain()
    finally:
        pipeline.append_batch = real  # type: ignore[assignment]
        await resolver.aclose()
    return captured


async def run_rebuild(url: str) -> tuple[int, float]:
    """(events folded, seconds) of `appview rebuild` on the log a run left; asserts digest == live."""
    async with await connect(url) as conn:
        live = await digest(conn)
    t = time.perf_counter()
    n = await rebuild(url, show_progress=False)
    s = time.perf_counter() - t
    async with await connect(url) as conn:
        again = await digest(conn)
    assert again.sha256 == live.sha256, "rebuild digest differs from live"
    return n, s


async def run_storage(url: str, batches: list[Batch]) -> tuple[Phase, Phase]:
    """(append, rest of projection) of pre-verified events with the projector following alongside, as
    in the service: what the naive path does, batched our way."""
    projector, stop = Projector(), asyncio.Event()
    async with await connect(url) as conn, await connect(url, autocommit=True) as mconn:
        meter = Meter(mconn)
        follower = asyncio.create_task(projector.run_forever(url, stop))
        await asyncio.sleep(0.2)
        gc.collect()
        s0 = await meter.snap()
        head = 0
        for events, cursor, states, rejects in batches:
            head = (await append_batch(conn, events, cursor=cursor, repo_states=states, rejects=rejects)).head or head
        s1 = await meter.snap()
        while await projector.position(mconn) < head:  # noqa: ASYNC110 - polling another task's progress
            await asyncio.sleep(0.002)
        s2 = await meter.snap()
        stop.set()
        await follower
        return Meter.phase(s0, s1), Meter.phase(s1, s2)


# ---- the naive baseline: one transaction per op -------------------------------------------------

_LOG_INSERT = """
INSERT INTO record_event (did, collection, rkey, rev, action, cid, record, source, source_seq, verified)
VALUES (%s, %s, %s, %s, %s, %s, %s, 'firehose:naive', %s, true) RETURNING seq, received_at
"""
_TABLES: dict[str, tuple[str, tuple[str, ...], Callable[[Put], tuple[Any, ...]]]] = {
    "fm.plyr.track": ("track", tracks.COLUMNS, tracks.row),
    "fm.plyr.like": ("like", likes.COLUMNS, likes.row),
    "fm.plyr.comment": ("comment", comments.COLUMNS, comments.row),
    "fm.plyr.list": ("list", lists.COLUMNS, lists.row),
}


def _upsert_sql(table: str, cols: tuple[str, ...]) -> str:
    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in cols if c not in ("id", "uri", "indexed_at"))
    return (f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({", ".join(["%s"] * len(cols))}) '
            f"ON CONFLICT (uri) DO UPDATE SET {sets}")


_UPSERTS = {coll: _upsert_sql(table, cols) for coll, (table, cols, _) in _TABLES.items()}


async def run_naive(url: str, w: Workload, limit: int) -> tuple[Phase, int]:
    tracked = frozenset(w.did_docs)
    done = 0
    async with await connect(url) as conn, await connect(url, autocommit=True) as mconn:
        meter = Meter(mconn)
        gc.collect()
        s0 = await meter.snap()
        for raw in w.frames:
            c = decode_frame(raw, tracked)
            assert isinstance(c, Commit)
            for op in c.ops:
                async with conn.cursor() as cur:
                    await cur.execute(_LOG_INSERT, (c.did, op.collection, op.rkey, c.rev, op.action, op.cid,
                                                    None if op.record is None else Jsonb(op.record), c.seq))
                    seq, received = await cur.fetchone() or (0, None)
                    table, _, row = _TABLES[op.collection]
                    ev = LoggedRecord(seq, c.did, op.collection, op.rkey, c.rev, op.action, op.cid, op.record,
                                      True, None, received)
                    if op.action == "delete":
                        await cur.execute(f'DELETE FROM "{table}" WHERE uri = %s', (ev.uri,))
                    else:
                        put = Put(ev, seq, received)
                        await cur.execute(_UPSERTS[op.collection], row(put))
                    if op.collection == "fm.plyr.list":
                        await cur.execute("DELETE FROM list_item WHERE list_uri = %s", (ev.uri,))
                        if op.record is not None:
                            await cur.executemany("INSERT INTO list_item VALUES (%s, %s, %s, %s)",
                                                  lists.item_rows(put))
                await conn.commit()
                done += 1
            if done >= limit:
                break
        return Meter.phase(s0, await meter.snap()), done


# ---- report ----------------------------------------------------------------------------------------

def print_profile(prof: cProfile.Profile, top: int) -> None:
    st = pstats.Stats(prof)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    print(f"\n--- cProfile of one sequential append + projection pass ({total:.2f} s profiled) ---")
    stages = [("decode_frame", "frames.py", "decode_frame"), ("verify_signature", "crypto.py", "verify_signature"),
              ("check", "records.py", "RecordValidator.check"), ("append_batch", "append.py", "append_batch"),
              ("read_after", "read.py", "read_after"), ("_flush", "runner.py", "Projector._flush"),
              ("upsert_rows", "writes.py", "upsert_rows"), ("write_row", "", "psycopg copy write_row"),
              ("'poll' of 'select.epoll' objects>", "~", "epoll (idle: Postgres)")]
    print("stage cumulative time (coroutines: summed over resumptions, so time awaiting Postgres is in epoll):")
    for name, file, label in stages:
        hits = [v for k, v in raw.items() if k[2].endswith(name) and k[0].endswith(file)]
        ct, tt = sum(v[3] for v in hits), sum(v[2] for v in hits)
        print(f"  {label:24s} cum {ct:6.2f} s  ({100 * ct / total:4.1f} %)  self {tt:5.2f} s")
    print(f"top {top} functions by self time:")
    st.sort_stats("tottime").print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=4500, help="gen_dataset.py --tracks (ops = ~6.8x, repos = /10)")
    ap.add_argument("--batch", type=int, default=1000, help="frames per Ingest.handle call")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive-ops", type=int, default=0, help="ops the naive path runs (a prefix; 0 = all)")
    ap.add_argument("--profile", action="store_true", help="add one cProfile'd pass and print where time goes")
    ap.add_argument("--rows", choices=("all", "storage"), default="all",
                    help="storage: only (s), the plain-COPY limit and the rebuild")
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/plyr-bench-ingest"))
    a = ap.parse_args()
    asyncio.run(amain(a))


async def amain(a: argparse.Namespace) -> None:
    configure_logging("json", "warning")
    tune_gc()  # as the ingester's composition root does
    t = time.perf_counter()
    w = build(a.workdir, a.tracks)
    size = sum(map(len, w.frames)) / len(w.frames)
    print(f"{await server_line(a.database_url)}\nworkload: {w.ops} ops in {len(w.frames)} signed commits "
          f"({size:.0f} B avg) for {len(w.did_docs)} repos, built in {time.perf_counter() - t:.1f} s; "
          f"ops/commit {dict(sorted(w.commits_by_size.items()))}; {w.by_action}; {w.by_collection}")
    validator = RecordValidator()
    limit = a.naive_ops or w.ops
    cold: list[tuple[Phase, Phase]] = []
    conc: list[tuple[Phase, Phase]] = []
    warm: list[tuple[Phase, Phase]] = []
    warm_conc: list[tuple[Phase, Phase]] = []
    naive: list[tuple[Phase, int]] = []
    storage: list[tuple[Phase, Phase]] = []
    limits: list[Limit] = []
    rebuilds: list[tuple[int, float]] = []
    async with scratch_database(a.database_url, "bench_ingest") as url:
        captured = await capture(url, w, a.batch, validator)
        for i in range(a.repeat):
            await reset(url)
            storage.append(await run_storage(url, captured))
            limits.append(await copy_limit(url, repeat=1))
            rebuilds.append(await run_rebuild(url))
            print(f"repeat {i + 1}: storage {sum(x.wall for x in storage[-1]):.2f} s; {limits[-1].render()}; "
                  f"rebuild {rebuilds[-1][0]} events in {rebuilds[-1][1]:.2f} s; load average {os.getloadavg()}")
            if a.rows == "storage":
                continue
            await reset(url)
            cold.append(await run_ours(url, w, a.batch, validator))
            if i == 0:
                print(f"after ours: {await counts(url)}")
            await reset(url)
            conc.append(await run_ours(url, w, a.batch, validator, concurrent=True))
            await reset(url)
            warm.append(await run_ours(url, w, a.batch, validator, warm=True))
            await reset(url)
            warm_conc.append(await run_ours(url, w, a.batch, validator, warm=True, concurrent=True))
            await reset(url)
            naive.append(await run_naive(url, w, limit))
            print(f"repeat {i + 1}: append {cold[-1][0].wall:.2f} s + projection {cold[-1][1].wall:.2f} s; "
                  f"concurrent {conc[-1][0].wall + conc[-1][1].wall:.2f} s; warm {warm[-1][0].wall:.2f} s + "
                  f"{warm[-1][1].wall:.2f} s; naive {naive[-1][1]} ops in {naive[-1][0].wall:.2f} s")
        if a.profile:
            await reset(url)
            prof = cProfile.Profile()
            await run_ours(url, w, a.batch, validator, profile=prof)

    med = statistics.median
    events = rebuilds[0][0]
    limit_s = med(x.seconds for x in limits)
    storage_rate = med(w.ops / (x[0].wall + x[1].wall) for x in storage)
    rebuild_rate = med(n / s for n, s in rebuilds)
    print(f"\n{limits[0].render().split(' in ')[0]}: median {limit_s:.3f} s = {w.ops / limit_s:,.0f} ops/s "
          f"({events / limit_s:,.0f} log events/s); load average {os.getloadavg()}")
    print(f"(s) storage: log || projector: {storage_rate:,.0f} ops/s; rebuild of the same log: {rebuild_rate:,.0f} "
          f"events/s ({events} events)")
    if a.rows == "storage":
        print(f"limit ratio: storage {storage_rate / (w.ops / limit_s):.2f}, "
              f"rebuild {rebuild_rate / (events / limit_s):.2f}")
        return
    hot = w.ops - w.first_ops
    rows = [("(a) ours: append (decode+verify+validate+log)", [(w.ops, x[0]) for x in cold]),
            ("(p) ours: projection alone (catch_up)", [(w.ops, x[1]) for x in cold]),
            ("(b) ours: append, then projection", [(w.ops, x[0] + x[1]) for x in cold]),
            ("(b2) ours: append || projector (as Ingester)", [(w.ops, x[0] + x[1]) for x in conc]),
            ("(a) warm: append, repos already seen", [(hot, x[0]) for x in warm]),
            ("(p) warm: projection alone", [(hot, x[1]) for x in warm]),
            ("(b) warm: append, then projection", [(hot, x[0] + x[1]) for x in warm]),
            ("(b2) warm: append || projector", [(hot, x[0] + x[1]) for x in warm_conc]),
            ("(s) storage: log || projector, pre-verified", [(w.ops, x[0] + x[1]) for x in storage]),
            ("(c) naive: INSERT+upsert+COMMIT per op", [(d, ph) for ph, d in naive])]
    base = med(n / ph.wall for n, ph in rows[-1][1])
    print(f"\nmedian of {a.repeat}; ops = committed record ops ({w.ops} ours; warm: {hot}, after each repo's first "
          f"commit; {limit} naive); CPU per op: py = this process, pg = the database's backends ({os.cpu_count()} "
          "cores for both)")
    print(f"{'path':46s} {'ops/s':>7s} {'vs naive':>8s} {'vs 20k':>6s} {'wall us/op':>10s} {'py CPU':>6s} "
          f"{'pg CPU':>6s}")
    for name, runs in rows:
        rate = med(n / ph.wall for n, ph in runs)
        us = [med(1e6 * getattr(ph, f) / n for n, ph in runs) for f in ("wall", "py", "pg")]
        print(f"{name:46s} {rate:7.0f} {rate / base:7.1f}x {rate / TARGET_OPS:5.2f}x {us[0]:10.1f} {us[1]:6.1f} "
              f"{us[2]:6.1f}")
    for name, runs in (rows[0], rows[3], rows[4], rows[7], rows[8]):
        rate = med(n / ph.wall for n, ph in runs)
        ok = rate >= TARGET_OPS and rate / base >= TARGET_RATIO
        label = name.split(":")[0]
        print(f"target >= {TARGET_OPS} ops/s and >= {TARGET_RATIO:.0f}x naive, {label}: {'MET' if ok else 'MISSED'}")
    if a.profile:
        print_profile(prof, 25)
    print(f"limit ratio: storage {storage_rate / (w.ops / limit_s):.2f}, "
          f"rebuild {rebuild_rate / (events / limit_s):.2f}")


if __name__ == "__main__":
    main()
