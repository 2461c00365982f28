"""Which Postgres to use: DATABASE_URL as given, else the embedded one under the data directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Any

from core.db.embedded import start_embedded
from core.settings import CoreSettings


def resolve_database(settings: CoreSettings) -> tuple[str, Any]:
    """(URL, handle keeping the embedded server alive or None)."""
    if settings.database_url:
        return settings.database_url, None
    pgdata = (settings.data_dir / "pg").resolve()
    return start_embedded(pgdata, database="appview")


class AlreadyRunning(Exception):
    """Another `appview run`/`ingest` holds this data directory."""


def hold_ingest_lock(data_dir: Path) -> IO[str]:
    """One ingester per embedded data directory (a second `./run.sh` would follow the firehose twice).

    An OS lock, not a pid file: it dies with its process, `kill -9` included. Keep the returned file open.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    f = (data_dir / "ingester.lock").open("a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise AlreadyRunning(f"an ingester already runs on {data_dir} (pid {holder}); stop it first, or run the API "
                             f"alone with `appview serve`") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f
