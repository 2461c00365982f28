"""A real PgBouncer (Debian's `pgbouncer`) in transaction mode, in front of the test Postgres, on a free port.

Its server connections start in another time zone (Asia/Kolkata) than the UTC the API sets, and there are fewer
of them than our pool's connections, so consecutive transactions of one client land on different server
sessions: anything that relied on session state (a startup `options`, a prepared statement, a LISTEN) breaks.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

SERVER_POOL = 3  # server connections per database/user: fewer than the API's pool


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def pgbouncer(server_url: str) -> Iterator[str]:
    """Yields a URL template `postgresql://user@127.0.0.1:<port>/{db}` that goes through the bouncer."""
    binary = pgbouncer_binary()
    if binary is None:
        pytest.skip("pgbouncer is not installed (Debian package `pgbouncer`; .ci/run installs it)")
    parts = urlsplit(server_url)
    user = parts.username or "postgres"
    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="appview-pgbouncer-"))
    work.chmod(0o755)
    (work / "users.txt").write_text(f'"{user}" ""\n')
    (work / "pgbouncer.ini").write_text(f"""[databases]
* = host={parts.hostname or "127.0.0.1"} port={parts.port or 5432} timezone=Asia/Kolkata

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {work / "users.txt"}
pool_mode = transaction
default_pool_size = {SERVER_POOL}
max_client_conn = 200
server_reset_query =
logfile = {work / "pgbouncer.log"}
""")
    args = [binary, str(work / "pgbouncer.ini")]
    if os.geteuid() == 0:  # it refuses to run as root: drop to an unprivileged user that can read its files
        nobody = pwd.getpwnam("nobody")
        for f in work.iterdir():
            os.chown(f, nobody.pw_uid, nobody.pw_gid)
        os.chown(work, nobody.pw_uid, nobody.pw_gid)
        args[1:1] = ["-u", "nobody"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (work / "pgbouncer.log").read_text() if (work / "pgbouncer.log").exists() else ""
                out = proc.stdout.read().decode() if proc.stdout and proc.poll() is not None else ""
                pytest.fail(f"pgbouncer did not start: {out} {log[-2000:]}")
            time.sleep(0.05)
        yield f"postgresql://{user}@127.0.0.1:{port}/{{db}}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
