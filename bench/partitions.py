"""Log append throughput: the partitioned `record_event` (migration 0016: seq-range partitions, dedup key in
`record_event_key`) against the unpartitioned log before it, in one run.

Both sides append the same batches — the real pipeline's output for `ingest.py`'s signed workload, captured once
— through `append_batch`: today's into a database at head, and the one before 0016 (its source read from git at
`--base-rev`) into a database migrated to 0016's parent revision. Runs alternate (before, after, before, …) from
empty tables so that load drifting on a shared machine hits both; medians of --repeat, load average printed.
`--partition-size` makes partitions small enough for the run to cross bounds (new partitions made in the
append transaction are then part of the figure).

    .venv/bin/python bench/partitions.py [--database-url postgresql://…] [--tracks 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from alembic.script import ScriptDirectory
from ingest import Batch, capture
from scratch import DEFAULT_URL, Meter, Phase, server_line, server_url, with_database
from signed_frames import build

from core.db.connect import connect
from core.db.migrate import alembic_config, upgrade
from core.logs import configure_logging
from core.process import tune_gc
from ingester.eventlog.partitions import set_partition_size
from ingester.validate.records import RecordValidator

ROOT = Path(__file__).resolve().parents[1]
# Seqs start below a 10M bound: the partitioned run crosses into `--partition-size` partitions.
_RESET = ("TRUNCATE record_event, repo_event, repo_state, source_cursor; SELECT setval('event_seq', 10000000 - 5000);"
          " CHECKPOINT")


def base_append(rev: str) -> Any:
    """`ingester/eventlog/append.py` as it was at `rev`, imported beside today's (same imports otherwise)."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:ingester/eventlog/append.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "append_before_0016.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("append_before_0016", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.append_batch


async def timed(url: str, append: Any, batches: list[Batch]) -> tuple[Phase, int]:
    async with await connect(url, autocommit=True) as conn:
        await conn.execute(_RESET)
    async with await connect(url) as conn, await connect(url, autocommit=True) as mconn:
        meter = Meter(mconn)
        records = 0
        s0 = await meter.snap()
        for events, cursor, states in batches:
            records += (await append(conn, events, cursor=cursor, repo_states=states)).records
        return Meter.phase(s0, await meter.snap()), records


async def amain(a: argparse.Namespace) -> None:
    configure_logging("json", "warning")
    tune_gc()
    w = build(a.workdir, a.tracks)
    url = server_url(a.database_url)
    parent = ScriptDirectory.from_config(alembic_config(url)).get_revision("0016")
    assert parent is not None
    before_rev = str(parent.down_revision)
    names = {"before": f"bench_parts_before_{os.getpid()}", "after": f"bench_parts_after_{os.getpid()}"}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        for name in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
    urls = {k: with_database(url, n) for k, n in names.items()}
    try:
        upgrade(urls["before"], before_rev)
        upgrade(urls["after"])
        async with await connect(urls["after"], autocommit=True) as conn:
            await set_partition_size(conn, a.partition_size)
        batches = await capture(urls["after"], w, a.batch, RecordValidator())
        appenders = {"before": base_append(a.base_rev), "after": sys.modules["ingester.eventlog.append"].append_batch}
        print(f"{await server_line(a.database_url)}\n{w.ops} record ops in {len(batches)} append batches; before = "
              f"{a.base_rev} on revision {before_rev}, after = this tree, partitions of {a.partition_size} seqs")
        runs: dict[str, list[Phase]] = {"before": [], "after": []}
        for i in range(a.repeat):
            for side in ("before", "after") if i % 2 == 0 else ("after", "before"):
                phase, records = await timed(urls[side], appenders[side], batches)
                assert records == w.ops, (side, records, w.ops)
                runs[side].append(phase)
            print(f"repeat {i + 1}: before {w.ops / runs['before'][-1].wall:,.0f} ops/s, after "
                  f"{w.ops / runs['after'][-1].wall:,.0f} ops/s; load {os.getloadavg()[0]:.2f}")
        async with await connect(urls["after"]) as conn:
            cur = await conn.execute("SELECT count(*) FROM log_partition")
            parts = (await cur.fetchone())[0]  # type: ignore[index]
        def med(side: str, what: str) -> float:
            per = [w.ops / p.wall if what == "ops/s" else getattr(p, what) / w.ops * 1e6 for p in runs[side]]
            return statistics.median(per)

        print(f"\nmedian of {a.repeat} ({parts} partitions at the end; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        print(f"{'':18s} {'unpartitioned':>14s} {'partitioned':>12s} {'ratio':>6s}")
        for what, label in (("ops/s", "append ops/s"), ("pg", "pg CPU us/op"), ("py", "py CPU us/op")):
            b, p = med("before", what), med("after", what)
            print(f"{label:18s} {b:14,.1f} {p:12,.1f} {p / b:6.2f}")
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
            for name in names.values():
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=2000, help="gen_dataset.py --tracks (ops = ~6.8x)")
    ap.add_argument("--batch", type=int, default=1000, help="frames per Ingest.handle call")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--partition-size", type=int, default=2000, help="seqs per partition made during the run")
    ap.add_argument("--base-rev", default="a2ad432", help="git revision whose append.py is 'before'")
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/plyr-bench-ingest"))
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
