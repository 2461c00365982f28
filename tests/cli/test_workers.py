"""`appview run --workers 3`: three API processes on one port, each a complete API — requests reach several of
them, a write becomes visible through every one (each worker's cache is woken by its own NOTIFY listener), the
outbound stream works on whichever worker a subscriber lands on, /metrics adds up every worker, a killed worker
is replaced; and the connection budget README promises holds."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from websockets.asyncio.client import connect as ws_connect

from core.db.connect import connect
from ingester.eventlog.append import append_batch
from tests.cli.workers_kit import appview, free_port, get, owner_of, wait_until, worker_pids
from tests.ingester import events as ev

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
WORKERS = 3
POOL_MAX = 3


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    raise AssertionError(f"no sample {name}{{{want}}}")


def connections(db_url: str) -> tuple[int, int]:
    """(the API's sessions, of which LISTEN sessions) on this database."""
    with psycopg.connect(db_url, autocommit=True) as c:
        row = c.execute("SELECT count(*), count(*) FILTER (WHERE query LIKE 'SELECT coalesce(max(position), 0)%%')"
                        " FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'appview-api'"
                        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_three_workers_share_the_port_and_each_one_works(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    with appview("run", db_url, port, tmp_path / "run.log", "--workers", str(WORKERS),
                 RESPONSE_CACHE_STALE_S="0", DB_POOL_MAX=str(POOL_MAX)) as proc:
        wait_until(lambda: len(worker_pids(proc.pid)) == WORKERS, 30, "workers not all spawned")
        pids = worker_pids(proc.pid)
        # The budget: one LISTEN session per worker, and at most DB_POOL_MAX + 1 sessions per worker.
        wait_until(lambda: connections(db_url)[1] == WORKERS, 30, f"LISTEN sessions: {connections(db_url)}")

        # Every worker caches the empty feed…
        seen: dict[int, int] = {}
        for _ in range(60):
            owner, status, body = get(port, "/tracks/", pids)
            assert status == 200 and body["tracks"] == []
            assert owner in pids
            seen[owner] = seen.get(owner, 0) + 1
        assert len(seen) >= 2, f"the kernel handed every connection to one worker: {seen}"
        requests = 60
        total, listening = connections(db_url)
        assert listening == WORKERS and total <= WORKERS * (POOL_MAX + 1), (total, listening)

        # …subscribers land on several workers too…
        subscribers = []
        for _ in range(9):
            ws = await ws_connect(f"ws://127.0.0.1:{port}/xrpc/fm.plyr.sync.subscribeEvents", open_timeout=10)
            subscribers.append((ws, owner_of(ws.local_address[1], port, pids)))
        assert len({w for _, w in subscribers}) >= 2

        # …then one write: every worker's cache and stream learn of it through their own listener.
        async with await connect(db_url) as conn:
            await append_batch(conn, [ev.identity(A, "alice.test"),
                                      ev.put(A, "fm.plyr.track", "3kaaaaaaaaa22", "3k0000000001a", ev.track("one"))])
        for ws, _ in subscribers:
            frames = []
            async with asyncio.timeout(20):
                while not any((f.get("commit") or {}).get("rkey") == "3kaaaaaaaaa22" for f in frames):
                    frames.append(orjson.loads(await ws.recv()))
            await ws.close()
        fresh: set[int] = set()
        deadline = asyncio.get_running_loop().time() + 20
        while fresh != set(seen) and asyncio.get_running_loop().time() < deadline:
            owner, status, body = get(port, "/tracks/", pids)
            requests += 1
            if status == 200 and [t["title"] for t in body["tracks"]] == ["one"] and owner is not None:
                fresh.add(owner)
            elif owner in fresh:
                raise AssertionError(f"worker {owner} went back to a stale answer")
            await asyncio.sleep(0.02)
        assert fresh == set(seen), f"workers that never showed the write: {set(seen) - fresh}"

        # /metrics from any worker adds up all of them (prometheus multiprocess mode).
        async with httpx.AsyncClient(timeout=10) as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        assert metric(text, "appview_http_requests_total", route="/tracks/", method="GET", status="200") == requests
        assert metric(text, "appview_db_pool_max", pool="primary") == POOL_MAX * WORKERS
        assert metric(text, "stream_subscribers") == 0
        assert "ingester_component_up" in text  # the ingester child's metrics are folded in

        # A worker killed outright is replaced; the port keeps answering meanwhile.
        victim = next(iter(pids))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in worker_pids(proc.pid) and len(worker_pids(proc.pid)) == WORKERS, 30,
                   "the killed worker was not replaced")
        for _ in range(10):
            assert get(port, "/tracks/", worker_pids(proc.pid))[1] == 200
    assert proc.returncode == 0
    assert not worker_pids(proc.pid)
    assert "api_worker.died" in (tmp_path / "run.log").read_text()


@pytest.mark.parametrize("flag", [["--workers", "0"], ["--workers", "x"]])
def test_bad_worker_counts_are_usage_errors(flag: list[str]) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "cli", "serve", *flag], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--workers is an integer from 1 to 64" in out.stderr


def test_bad_api_workers_setting_exits_2() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "cli", "serve"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, API_WORKERS="65"))
    assert out.returncode == 2 and "invalid setting API_WORKERS='65'" in out.stderr


def _sessions(db_url: str) -> dict[str, int]:
    with psycopg.connect(db_url, autocommit=True) as c:
        rows = c.execute("SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = current_database()"
                         " AND pid <> pg_backend_pid() GROUP BY 1").fetchall()
    return {str(name): int(n) for name, n in rows}


async def test_idle_run_holds_the_documented_budget(db_url: str, tmp_path: Path) -> None:
    """README's budget for one `appview run`: the API DB_POOL_MIN + 1 once idle (a burst grows its pool, which
    shrinks back), the ingester one per source + projector 2 + heartbeat 1 + its leader lease 1 (mirror off here)."""
    port = free_port()
    with appview("run", db_url, port, tmp_path / "run.log", DB_POOL_MAX_IDLE_S="1", DB_POOL_MAX="6"):
        async with httpx.AsyncClient(timeout=30) as http:
            await asyncio.gather(*(http.get(f"http://127.0.0.1:{port}/tracks/?limit={i}") for i in range(1, 13)))
        assert _sessions(db_url).get("appview-api", 0) <= 6 + 1
        wait_until(lambda: _sessions(db_url).get("appview-api") == 1 + 1, 60,
                   lambda: f"the API's pool never shrank back: {_sessions(db_url)}")
        # Ingester sessions are named `appview-ingest <instance>[ lease]` (leadership.py): the lease is one more.
        wait_until(lambda: sum(n for name, n in _sessions(db_url).items() if name.startswith("appview-ingest"))
                   == 1 + 2 + 1 + 1, 30, lambda: f"ingester sessions: {_sessions(db_url)}")


def test_a_taken_port_is_one_clear_error(db_url: str) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "cli", "serve", "--workers", "2"], capture_output=True, text=True,
                             timeout=120, env=dict(os.environ, DATABASE_URL=db_url, PORT=str(port)))
    assert out.returncode != 0 and f"could not listen on 127.0.0.1:{port}" in out.stderr, out.stderr[-2000:]
