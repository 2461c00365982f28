"""`appview demo`: the AppView with data, offline — the real reference PDS + PLC, a seeded catalogue, and us.

Everything lives under `$APPVIEW_DATA_DIR/demo/` (its own embedded Postgres, the PDS's SQLite and blobs, the PLC in
that Postgres, our blob mirror), so a second `appview demo` reuses what the first made and the production data
directory is never touched. The PDS port is baked into every DID document, so the ports are chosen once and kept.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx
import structlog

from cli.demo_catalogue import seed
from core.db.embedded import start_embedded

log = structlog.get_logger("appview.demo")

LOCALNET = Path(__file__).resolve().parent.parent / "tests" / "localnet"


class DemoError(Exception):
    """Something the user can fix (a port taken, Node missing); the message says what."""


@dataclass
class DemoState:
    pds_port: int = 0
    plc_port: int = 0
    seeded: bool = False
    handles: dict[str, str] = field(default_factory=dict)
    tracks: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> DemoState:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))


@dataclass(frozen=True)
class Demo:
    env: dict[str, str]  # the settings the AppView runs with
    state: DemoState


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _step(text: str) -> float:
    print(f"demo: {text} …", file=sys.stderr, flush=True)
    return time.monotonic()


def _with_database(uri: str, name: str) -> str:
    base, _, query = uri.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


def _start_localnet(root: Path, state: DemoState, plc_db_url: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    if shutil.which("node") is None:
        raise DemoError("the demo runs the reference PDS on Node.js 20: install node and npm first")
    if not (LOCALNET / "localnet.js").exists():
        raise DemoError(f"{LOCALNET} is missing: the demo runs from a checkout of the repository")
    if not (LOCALNET / "node_modules").exists():
        t = _step("installing the reference PDS + PLC (tests/localnet, once; about a minute cold)")
        subprocess.run(["bash", str(LOCALNET / "localnet-setup.sh")], check=True)
        print(f"demo: installed in {time.monotonic() - t:.0f} s", file=sys.stderr)
    for port in (state.pds_port, state.plc_port):
        if not _port_free(port):
            raise DemoError(f"port {port} (kept from the first demo run: the PDS port is in every DID document) "
                            f"is in use — stop what holds it, or start over with `appview demo --reset`")
    env = dict(os.environ, PDS_PORT=str(state.pds_port), PLC_PORT=str(state.plc_port),
               PDS_DATA_DIR=str(root / "pds"), PLC_DB_URL=plc_db_url, KEEP_DATA="1",
               LOCALNET_SEQ_POLL_MAX_MS="20", LOCALNET_EXIT_ON_STDIN_EOF="1")
    logfile: IO[str] = (root / "localnet.log").open("a")
    proc = subprocess.Popen(["node", "localnet.js"], cwd=LOCALNET, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        logfile.write(line)
        if line.startswith("LOCALNET_READY "):
            info: dict[str, Any] = json.loads(line.split(" ", 1)[1])
            _drain_in_background(proc, logfile)
            return proc, info
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise DemoError(f"the reference PDS did not start: see {root / 'localnet.log'}")


def _drain_in_background(proc: subprocess.Popen[str], logfile: IO[str]) -> None:
    import threading

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            logfile.write(line)
            logfile.flush()
        logfile.close()

    threading.Thread(target=drain, daemon=True, name="localnet-log").start()


@asynccontextmanager
async def demo_world(data_dir: Path, *, reset: bool = False) -> AsyncIterator[Demo]:
    """Start (or restart) the demo's Postgres, PDS + PLC, seed the catalogue once, and yield the AppView's settings."""
    root = (data_dir / "demo").resolve()
    if reset and root.exists():
        _step(f"--reset: removing {root}")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    state_file = root / "state.json"
    state = DemoState.load(state_file)
    if not state.pds_port:
        state.pds_port, state.plc_port = _free_port(), _free_port()
        state.save(state_file)
    t = _step("starting the demo's embedded Postgres")
    uri, server = start_embedded(root / "pg", database="appview")
    if "1 row" not in server.psql("SELECT 1 FROM pg_database WHERE datname = 'plc';"):
        server.psql("CREATE DATABASE plc;")
    log.info("demo.postgres", took_s=round(time.monotonic() - t, 1))
    proc = None
    try:
        t = _step(f"starting the reference PDS on :{state.pds_port} and PLC on :{state.plc_port}")
        proc, info = _start_localnet(root, state, _with_database(uri, "plc"))
        log.info("demo.localnet", pds=info["pdsUrl"], plc=info["plcUrl"], took_s=round(time.monotonic() - t, 1))
        if not state.seeded:
            t = _step("writing the demo catalogue into the PDS (artists, tracks with audio, albums, playlists, "
                      "likes, timed comments, teal.fm plays, Bluesky profiles)")
            seeded = await seed(info["pdsUrl"])
            state.handles, state.tracks, state.seeded = seeded.handles, seeded.tracks, True
            state.save(state_file)
            log.info("demo.seeded", tracks=len(seeded.tracks), took_s=round(time.monotonic() - t, 1))
        env = {
            "DATABASE_URL": uri,
            "APPVIEW_DATA_DIR": str(root),
            "FIREHOSE_HOSTS": f"ws://localhost:{state.pds_port}",
            "PLC_URL": info["plcUrl"],
            "BACKFILL_PDS_HOSTS": info["pdsUrl"],  # discovery on start: what was written before we listened
            "OUTBOUND_ALLOW_PRIVATE": "true",  # the PDS is on loopback, over plain http
            "LABELERS": "",
            "JETSTREAM_URLS": "",
        }
        yield Demo(env, state)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.cleanup()


async def announce(base: str, state: DemoState, stop: asyncio.Event) -> None:
    """Once the API answers with the catalogue, print where to look."""
    tracks: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                r = await client.get("/tracks/", params={"limit": 50})
                tracks = r.json().get("tracks", []) if r.status_code == 200 else []
                if len(tracks) >= len(state.tracks):
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
        else:
            if not stop.is_set():
                log.warning("demo.catalogue_not_visible", hint="see /status for backfill and source state")
    if stop.is_set():
        return
    lines = [
        f"  status page      {base}/",
        f"  API docs         {base}/docs",
        f"  latest tracks    {base}/tracks/",
        f"  search           {base}/search/?q=glass",
        f"  an artist        {base}/artists/by-handle/{state.handles.get('nova', 'nova.test')}",
    ]
    first = next((t for t in tracks if t.get("title") == "Glass Harbor"), tracks[0] if tracks else None)
    if first is not None:
        lines.append(f"  a track          {base}/tracks/{first['id']}")
        if first.get("file_id"):
            lines.append(f"  its audio        {base}/audio/{quote(str(first['file_id']))}")
    print("\nThe demo AppView is up with its catalogue. Open:\n" + "\n".join(lines) + "\n"
          "Write more records to the demo PDS and watch them arrive; Ctrl-C stops everything.\n",
          file=sys.stderr, flush=True)
