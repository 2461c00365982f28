"""A real primary + streaming hot standby, started from Debian's PostgreSQL binaries in a temp directory.

The primary is `initdb`'d with `wal_level=replica` on a free port; the standby is a `pg_basebackup -R` of it
(streaming, `hot_standby=on`) on another. As root everything runs as the `postgres` user (initdb refuses root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
NEEDED = ("initdb", "pg_ctl", "pg_basebackup", "postgres")


def missing_binaries() -> str | None:
    """Why the replica tests cannot run here (None: they can)."""
    absent = [b for b in NEEDED if not (PG_BIN / b).exists()]
    if absent:
        return f"PostgreSQL server binaries not found in {PG_BIN} ({', '.join(absent)}); set TEST_PG_BIN"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run initdb as"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run(*args: str | Path, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    user = "postgres" if os.geteuid() == 0 else None
    return subprocess.run([str(a) for a in args], check=check, capture_output=True, text=True, timeout=timeout,
                          user=user, cwd="/")


@dataclass
class Server:
    data: Path
    port: int
    log: Path
    sockets: Path

    def options(self) -> str:
        # fsync off: a test cluster (synchronous_commit stays on: async commits reach a standby only after the
        # WAL writer flushes, up to 3 × wal_writer_delay later); small buffers: the machine is shared.
        return (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.sockets}"
                " -c fsync=off -c full_page_writes=off -c shared_buffers=16MB"
                " -c max_connections=60 -c wal_level=replica -c max_wal_senders=4 -c hot_standby=on"
                " -c wal_receiver_status_interval=1s")

    def start(self) -> None:
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-o", self.options(), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop", check=False)

    def url(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"


class Cluster:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="appview-replica-"))
        self.root.chmod(0o755)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.root, pg.pw_uid, pg.pw_gid)
        self.primary = Server(self.root / "primary", free_port(), self.root / "primary.log", self.root)
        self.replica = Server(self.root / "replica", free_port(), self.root / "replica.log", self.root)

    def start(self, db: str) -> None:
        _run(PG_BIN / "initdb", "-D", self.primary.data, "-A", "trust", "-U", "postgres", "--no-sync",
             "-E", "UTF8", "--locale=C")
        self.primary.start()
        with psycopg.connect(self.primary.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        _run(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
             "-D", self.replica.data, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync")
        self.replica.start()
        self.wait_replica(db)

    def wait_replica(self, db: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.replica.url(db), connect_timeout=2) as conn:
                    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                    assert row is not None and row[0], "the replica is not a hot standby"
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:]
                         for p in (self.primary.log, self.replica.log) if p.exists())

    def close(self) -> None:
        self.replica.stop("immediate")
        self.primary.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
