"""Browser tests: Debian's chromium driven by Playwright's Python package (never `playwright install`).

`.ci/run` installs chromium with apt-get when it is missing, so CI runs them; they are skipped, with the
reason, only where chromium is not installed (and `.ci/run` then prints why apt-get could not install it).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from appview.app import create_app
from appview.settings import AppviewSettings
from tests.appview.conftest import world  # noqa: F401  (the read-side world fixture)

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# As root, in a container, offline: no sandbox, no GPU, nothing phoning home; and every host name except
# the loopback ones resolves to nothing, so a page that tried to load from a CDN would visibly fail.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"]


def chromium_or_skip() -> str:
    if shutil.which(CHROMIUM) or Path(CHROMIUM).is_file():
        return CHROMIUM
    pytest.skip(f"chromium not installed at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    url: str
    server: Any


@pytest.fixture
def api_server(world: Any) -> Iterator[Any]:  # noqa: F811
    """Start the real app under uvicorn on a free port, in its own thread and event loop."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(**settings: Any) -> str:
        port = free_port()
        app = create_app(AppviewSettings(**({"response_cache": False} | settings)), world.db_url)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="on", ws="none"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        for _ in range(1000):
            if server.started:
                break
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:  # stopped (pool closed) before the world's database is dropped
        server.should_exit = True
        thread.join(timeout=30)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_site() -> Iterator[Any]:
    """Serve `tests/browser/site/` on a free port of the host given (another origin than the API)."""
    started: list[ThreadingHTTPServer] = []

    def start(host: str) -> str:
        handler = partial(_Quiet, directory=str(Path(__file__).parent / "site"))
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return f"http://{host}:{srv.server_address[1]}"

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    """A persistent context on a fresh profile directory (Playwright takes `--user-data-dir` this way)."""
    path = chromium_or_skip()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        ctx = await pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=path,
                                                         headless=True, args=CHROMIUM_ARGS)
        try:
            yield ctx
        finally:
            await ctx.close()
