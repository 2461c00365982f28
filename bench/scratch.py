"""Shared by the ingest/lag benchmarks: a scratch database per run, and the machine line."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable as `python bench/x.py` without installing the package

import psutil  # noqa: E402
import psycopg  # noqa: E402

from core.db.migrate import upgrade  # noqa: E402

# A Postgres server to create scratch databases on: --database-url, else $BENCH_DATABASE_URL, else an embedded
# Postgres started for this run under a temp directory (slower to start; figures comparable on the same machine).
DEFAULT_URL: str | None = os.environ.get("BENCH_DATABASE_URL") or None
_embedded: dict[str, object] = {}


def server_url(url: str | None) -> str:
    """`url`, or the URL of an embedded Postgres started (once per process) for the benchmark."""
    if url:
        return url
    if "url" not in _embedded:
        import atexit
        import shutil
        import tempfile

        from core.db.embedded import start_embedded

        root = Path(tempfile.mkdtemp(prefix="appview-bench-pg-"))
        root.chmod(0o755)
        uri, server = start_embedded(root / "data", database="postgres")
        print(f"# no --database-url: embedded Postgres in {root}", file=sys.stderr, flush=True)

        def _stop() -> None:
            server.cleanup()
            shutil.rmtree(root, ignore_errors=True)

        atexit.register(_stop)
        _embedded["url"] = uri
    return str(_embedded["url"])


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@asynccontextmanager
async def scratch_database(url: str | None, prefix: str, code_root: str | None = None) -> AsyncIterator[str]:
    """CREATE DATABASE <prefix>_<pid> next to `url`'s database, migrate it, yield its URL, DROP it. `code_root`:
    another checkout (a baseline) whose own migrations set the database up, as its code expects it."""
    url = server_url(url)
    name = f"{prefix}_{os.getpid()}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    scratch = with_database(url, name)
    try:
        if code_root is None:
            upgrade(scratch)
        else:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import sys; from core.db.migrate import upgrade; upgrade(sys.argv[1])", scratch,
                cwd=code_root, env={**os.environ, "PYTHONPATH": code_root})
            if await proc.wait() != 0:
                raise RuntimeError(f"migrating {name} with {code_root}'s code failed")
        yield scratch
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def server_line(url: str | None) -> str:
    async with await psycopg.AsyncConnection.connect(server_url(url)) as conn:
        cur = await conn.execute("SELECT current_setting('server_version'), current_setting('synchronous_commit'),"
                                 " current_setting('shared_buffers')")
        row = await cur.fetchone()
    assert row is not None
    return (f"{os.cpu_count()} vCPU {platform.machine()}, Python {platform.python_version()}, "
            f"PostgreSQL {row[0]} (synchronous_commit={row[1]}, shared_buffers={row[2]})")


@dataclass(frozen=True)
class Phase:
    wall: float
    py: float  # CPU seconds of this process
    pg: float  # CPU seconds of the scratch database's backends (not walwriter/checkpointer/autovacuum)

    def __add__(self, o: Phase) -> Phase:
        return Phase(self.wall + o.wall, self.py + o.py, self.pg + o.pg)


Snap = tuple[float, float, dict[int, float]]


class Meter:
    """Wall clock, this process's CPU and the Postgres backends' CPU (psutil on pg_stat_activity pids)."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn = conn  # autocommit, on the scratch database, used for nothing else

    async def snap(self) -> Snap:
        cur = await self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                                      " AND pid <> pg_backend_pid()")
        cpu: dict[int, float] = {}
        for (pid,) in await cur.fetchall():
            try:
                t = psutil.Process(pid).cpu_times()
                cpu[pid] = t.user + t.system
            except psutil.Error:
                pass
        return time.perf_counter(), time.process_time(), cpu

    @staticmethod
    def phase(a: Snap, b: Snap) -> Phase:
        # a backend born during the phase counts from 0: its cumulative CPU was all spent in the phase
        return Phase(b[0] - a[0], b[1] - a[1], sum(v - a[2].get(pid, 0.0) for pid, v in b[2].items()))
