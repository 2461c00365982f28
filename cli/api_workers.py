"""`--workers N` (or `API_WORKERS`): N API processes answering on one port.

The parent binds the listening socket once (a taken port is one clear error, and no stale process can
silently share the port as it could with SO_REUSEPORT) and spawns N `python -m cli.api_workers` children
that inherit it and accept on it — uvicorn's own multi-worker model, under our supervisor: a worker that
dies is restarted with backoff, and every worker stops with the parent. Each worker is a complete API
process: its own pool, its one LISTEN session (cache freshness and the outbound stream's wake-ups), its own
response cache. Metrics: prometheus-client's multiprocess mode, one fresh `PROMETHEUS_MULTIPROC_DIR` per
run, so `/metrics` on any worker reports every worker's counters (appview/metrics_endpoint.py).

This module must not import the ingester: its metrics would be written, idle, into the shared directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile

import structlog

from appview.settings import AppviewSettings
from cli.supervise import PARENT_PID_ENV, ChildMetrics, supervise, watch_parent
from core.logs import configure_logging
from core.process import tune_gc
from core.settings import CoreSettings, SettingsError, load_settings

log = structlog.get_logger("appview")

LISTEN_FD_ENV = "APPVIEW_LISTEN_FD"
INGESTER_METRICS_ENV = "APPVIEW_INGESTER_METRICS_URL"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BACKLOG = 2048


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on (inheritable by the children)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise SystemExit(f"api: could not listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


async def serve_workers(settings: AppviewSettings, database_url: str, stop: asyncio.Event, workers: int, *,
                        ingester_metrics_url: str | None = None) -> None:
    """In the parent: bind, run `workers` supervised API processes until `stop`, then clean up."""
    from prometheus_client import multiprocess

    sock = bind(settings.host, settings.port)
    metrics_dir = tempfile.mkdtemp(prefix="appview-metrics-")  # fresh per run: no counters from a past run
    env = dict(os.environ, DATABASE_URL=database_url, **{LISTEN_FD_ENV: str(sock.fileno()),
                                                         MULTIPROC_ENV: metrics_dir, PARENT_PID_ENV: str(os.getpid())})
    if ingester_metrics_url:
        env[INGESTER_METRICS_ENV] = ingester_metrics_url

    def exited(pid: int) -> None:  # its live gauges must stop counting in the sums
        multiprocess.mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]

    try:
        runs = [supervise(env, stop, args=("-m", "cli.api_workers"), name="api_worker",
                          pass_fds=(sock.fileno(),), on_exit=exited) for _ in range(workers)]
        log.info("api.listening", url=f"http://{settings.host}:{settings.port}", workers=workers)
        await asyncio.gather(*runs)
    finally:
        sock.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)


async def _worker(settings: AppviewSettings, database_url: str, fd: int) -> None:
    import uvicorn

    from appview.app import create_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(settings, database_url)
    tune_gc()  # as `appview serve` does (core/process.py)
    if url := os.environ.get(INGESTER_METRICS_ENV):
        app.state.metrics_collectors.append(ChildMetrics(url))
    sock = socket.socket(fileno=fd)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    parent = asyncio.create_task(watch_parent(stop))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving
    for task in (parent, stopping):
        task.cancel()


def main() -> int:
    """A worker (spawned by `serve_workers`, never by hand): the API on the inherited socket."""
    try:
        core = load_settings(CoreSettings)
        settings = load_settings(AppviewSettings)
    except SettingsError as e:
        for line in str(e).splitlines():
            print(f"appview: {line}", file=sys.stderr)
        return 2
    configure_logging(core.log_format, core.log_level)
    os.environ["PGAPPNAME"] = "appview-api"
    structlog.contextvars.bind_contextvars(worker_pid=os.getpid())
    try:
        asyncio.run(_worker(settings, os.environ["DATABASE_URL"], int(os.environ[LISTEN_FD_ENV])))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

