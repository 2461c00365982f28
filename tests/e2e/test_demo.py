"""`./run.sh demo` as a newcomer runs it: the local PDS + PLC, the seeded catalogue, our API — twice, the second
time reusing what the first made — and a clean stop on Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.localnet.peer import free_port

ROOT = Path(__file__).resolve().parents[2]
UP = "The demo AppView is up"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's temp root: the embedded Postgres runs as another user and needs o+rx on its parents.
    d = Path(tempfile.mkdtemp(prefix="appview-demo-test-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start_demo(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    env = dict(os.environ, APPVIEW_DATA_DIR=str(data_dir), PORT=str(port), LOG_FORMAT="json")
    env.pop("DATABASE_URL", None)
    # exactly what the README tells a newcomer to type (run.sh installs nothing: test.sh just did)
    proc = subprocess.Popen(["bash", "run.sh", "demo"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if UP in line:
            # the URL lines follow the announcement
            for _ in range(8):
                lines.append(proc.stdout.readline())
            return proc, lines
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError("demo never came up:\n" + "".join(lines[-40:]))


def stop_demo(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, out[-3000:]
    assert "appview.stopped" in out


@pytest.mark.e2e
def test_demo_runs_offline_and_reuses_its_data(data_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, lines = start_demo(data_dir, port)
    try:
        assert any("writing the demo catalogue" in x for x in lines)
        assert any(f"{base}/tracks/" in x for x in lines)
        with httpx.Client(base_url=base, timeout=10) as c:
            tracks = c.get("/tracks/", params={"limit": 50}).json()["tracks"]
            assert {t["title"] for t in tracks} >= {"Glass Harbor", "Static Bloom", "Cerulean", "Rainmaker"}
            glass = next(t for t in tracks if t["title"] == "Glass Harbor")
            assert c.get(f"/tracks/{glass['id']}").json()["title"] == "Glass Harbor"
            assert any(r["title"] == "Glass Harbor" for r in c.get("/search/", params={"q": "glass"}).json()["results"])
            assert c.get(f"/artists/by-handle/{glass['artist_handle']}").status_code == 200
            # the audio: mirrored from the PDS, served with ranges
            deadline = time.monotonic() + 30
            while True:
                audio = c.get(f"/audio/{glass['file_id']}", headers={"range": "bytes=0-3"}, follow_redirects=False)
                if audio.status_code == 206 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert audio.status_code == 206 and audio.content == b"RIFF"
            assert c.get("/status").status_code == 200
            likes = c.get("/users/sam.test/likes").json()
            assert likes["count"] == 5
    finally:
        stop_demo(proc)

    proc, lines = start_demo(data_dir, port)
    try:
        assert not any("writing the demo catalogue" in x for x in lines), "the second run must reuse the first's data"
        with httpx.Client(base_url=base, timeout=10) as c:
            assert len(c.get("/tracks/", params={"limit": 50}).json()["tracks"]) == 8
    finally:
        stop_demo(proc)
