"""`appview run`: the ingester in a child process, supervised by the API's process (and, with several API
workers, the workers too: cli/api_workers.py).

Decoding, signature checks and MST proofs are CPU work on the ingester's event loop; sharing that loop
with the API let one slow frame hold `/health` for seconds. So `run` keeps the API in this process and
runs `appview ingest` as a child: spawned with the same environment (plus the resolved DATABASE_URL, so
an embedded Postgres is started once), restarted with backoff if it dies, terminated (then killed) on
shutdown, and watching our pid so that it stops if we are killed without a chance to stop it. Its
Prometheus metrics are served on a private loopback port and folded into the API's `/metrics`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType

import structlog
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from core.retry import Backoff, pause

log = structlog.get_logger("appview")

PARENT_PID_ENV = "APPVIEW_PARENT_PID"
STOP_GRACE_S = 10.0
HEALTHY_RUN_S = 60.0  # a child that lived this long died of something new: restart from the base delay


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(database_url: str, metrics_port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, METRICS_PORT=str(metrics_port), HOST="127.0.0.1",
               **{PARENT_PID_ENV: str(os.getpid())})
    return env


async def supervise(env: Mapping[str, str], stop: asyncio.Event, *, args: Sequence[str] = ("-m", "cli", "ingest"),
                    name: str = "ingester", pass_fds: Sequence[int] = (),
                    on_exit: Callable[[int], None] | None = None) -> None:
    """Run `python <args>` (default `appview ingest`) until `stop`; restart it with backoff whenever it exits.
    `on_exit(pid)` runs after each exit (API workers: their metrics files are marked dead)."""
    backoff = Backoff(base_s=1.0, cap_s=30.0)
    while not stop.is_set():
        started = time.monotonic()
        # Its own session: a terminal's Ctrl-C reaches only us, and we decide when it stops (no restart race).
        proc = await asyncio.create_subprocess_exec(sys.executable, *args, env=dict(env), start_new_session=True,
                                                    pass_fds=tuple(pass_fds))
        log.info(f"{name}.spawned", pid=proc.pid)
        exited = asyncio.create_task(proc.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if stop.is_set():
            await _terminate(proc, exited, name)
            if on_exit is not None:
                on_exit(proc.pid)
            return
        if on_exit is not None:
            on_exit(proc.pid)
        if time.monotonic() - started > HEALTHY_RUN_S:
            backoff.reset()
        delay = backoff.next_delay()
        log.error(f"{name}.died", pid=proc.pid, code=proc.returncode, restart_in_s=round(delay, 2))
        await pause(stop, delay)


async def _terminate(proc: asyncio.subprocess.Process, exited: asyncio.Task[int], name: str) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(exited), STOP_GRACE_S)
        except TimeoutError:
            log.warning(f"{name}.kill", pid=proc.pid)
            proc.kill()
    await exited
    log.info(f"{name}.stopped", pid=proc.pid, code=proc.returncode)


async def watch_parent(stop: asyncio.Event) -> None:
    """In the child: stop when the supervising process is gone (we were re-parented)."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return
    while not stop.is_set():
        if os.getppid() != int(parent):
            log.error("ingester.orphaned", parent=parent)
            stop.set()
            return
        await pause(stop, 1.0)


_PROCESS_WIDE = ("process_", "python_")


class ChildMetrics(Collector):
    """The child's /metrics, re-exposed by this process's registry (scraped on each collect)."""

    def __init__(self, url: str, timeout_s: float = 1.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    def collect(self) -> Iterator[Metric]:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout_s) as r:  # noqa: S310 (loopback URL we built)
                text = r.read().decode()
        except OSError:
            return  # the child is (re)starting: its metrics are briefly absent
        for family in text_string_to_metric_families(text):
            if family.name.startswith(_PROCESS_WIDE):  # ours has the same names: keep the child's apart
                family.name = "ingester_" + family.name
                family.samples = [s._replace(name="ingester_" + s.name) for s in family.samples]
            yield family


def fold_child_metrics(port: int, *modules: ModuleType) -> None:
    """Serve the child's metrics in place of this process's own (idle) copies of the same metrics."""
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                REGISTRY.unregister(value)
    REGISTRY.register(ChildMetrics(f"http://127.0.0.1:{port}/metrics"))
