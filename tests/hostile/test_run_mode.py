"""`appview run` as a user runs it: the API answers `/health` while its ingester (a supervised child
process) chews frames that are as expensive as the decoder allows, and a shutdown stops both."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
from pathlib import Path

import httpx
import psycopg

from cli.supervise import free_port
from ingester.sources.firehose import source_name
from tests.hostile.firehose_server import HostileRelay, empty_maps, slow_frame

FRAMES = 120  # ~25 ms of decoding each, plus a 4.9 MB bomb every 30


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


async def _cursor(db_url: str, source: str) -> int:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        row = await (await conn.execute("SELECT cursor FROM source_cursor WHERE source = %s", (source,))).fetchone()
    return int(row[0]) if row else 0


async def test_health_answers_while_the_ingester_chews(db_url: str, tmp_path: Path) -> None:
    frames = [slow_frame(s) for s in range(1, FRAMES + 1)]
    relay = HostileRelay(frames)
    for f in frames[::30]:
        relay.splice(f, empty_maps())
    async with relay.running():
        port = free_port()
        env = dict(os.environ, DATABASE_URL=db_url, FIREHOSE_HOSTS=relay.url, PORT=str(port), HOST="127.0.0.1",
                   LABELERS="", JETSTREAM_URLS="", BLOB_MIRROR="false", RESYNC_ENABLED="false",
                   PLC_URL="http://127.0.0.1:9", APPVIEW_DATA_DIR=str(tmp_path), LOG_LEVEL="warning",
                   INGEST_BATCH_MAX="20")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "run", env=env)
        latencies: list[float] = []
        children: list[int] = []
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if (await http.get("/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
                children = _children(proc.pid)
                assert len(children) == 1  # the ingester
                source, seen = source_name(relay.url), 0
                while seen < FRAMES and time.monotonic() < deadline + 120:
                    started = time.perf_counter()
                    r = await http.get("/health")
                    latencies.append(time.perf_counter() - started)
                    assert r.status_code == 200  # answered, while the child decodes
                    seen = await _cursor(db_url, source)
                    await asyncio.sleep(0.01)
                assert seen == FRAMES  # the child really did the work meanwhile
                assert "ingest_rejects_total" in (await http.get("/metrics")).text  # the child's, folded in
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
    for child in children:  # stopped with its parent
        assert not _alive(child)
    ms = sorted(1000 * x for x in latencies)
    print(f"/health while ingesting: n={len(ms)} p50={statistics.median(ms):.1f} ms "
          f"p99={ms[int(0.99 * (len(ms) - 1))]:.1f} ms max={ms[-1]:.1f} ms")
