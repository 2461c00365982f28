"""Driving `appview run|serve --workers N` as a user would (a subprocess), and telling its workers apart.

Which worker answered is read from the kernel, not from the response: the server side of our TCP
connection (found in /proc/net/tcp by our local port) is a socket inode that exactly one worker holds open.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def appview(command: str, db_url: str, port: int, log: Path, *args: str,
            **env: str) -> Iterator[subprocess.Popen[bytes]]:
    full = dict(os.environ, DATABASE_URL=db_url, PORT=str(port), HOST="127.0.0.1", LOG_FORMAT="json",
                FIREHOSE_HOSTS=f"ws://127.0.0.1:{free_port()}", LABELERS="", BLOB_MIRROR="false", **env)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli", command, *args], env=full, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: _ok(f"http://127.0.0.1:{port}/health"), 90,
                       lambda: f"the API never answered: {log.read_text()[-3000:]}")
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(check: Any, timeout_s: float, message: Any) -> None:
    """Poll `check` until true; `message`: a string, or a callable giving one (read when it fails)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.1)


def worker_pids(parent: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"cli.api_workers" in cmdline:
            out.add(int(entry.name))
    return out


def owner_of(client_port: int, server_port: int, pids: set[int]) -> int | None:
    """The worker holding the server side of the connection from `client_port`."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            inode = fields[9]
    if inode is None or inode == "0":
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


def get(port: int, path: str, pids: set[int]) -> tuple[int | None, int, Any]:
    """One request on a fresh connection: (the worker that answered, status, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())  # keep-alive: the socket stays to be traced
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(h.split(":", 1)[1]) for h in lines[1:] if h.lower().startswith("content-length:"))
        while len(body) < length:
            body += s.recv(65536)
        owner = owner_of(s.getsockname()[1], port, pids)
    return owner, status, orjson.loads(body) if body else None
