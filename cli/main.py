"""The `appview` command: one composition root for both processes and the maintenance commands.

  appview run       migrations + API, and the ingester in a supervised child process (the newcomer's default)
  appview ingest    the write side only      appview serve    the read side only
  appview migrate   apply migrations         appview rebuild  re-fold projections from the log
  appview digest    print a digest of every projection
  appview backfill  getRepo + diff for discovered repos (--relay, --pds) or given ones (--did)
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog

from appview.settings import AppviewSettings
from cli.database import resolve_database
from cli.supervise import child_env, fold_child_metrics, free_port, supervise, watch_parent
from core.db.connect import connect
from core.db.migrate import upgrade
from core.logs import configure_logging
from ingester.process import tune_gc
from ingester.projection.digest import digest
from ingester.projection.rebuild import rebuild
from ingester.service import Ingester, backfill_once
from ingester.settings import IngesterSettings

log = structlog.get_logger("appview")


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _serve(settings: AppviewSettings, url: str, stop: asyncio.Event) -> None:
    # Imported here: the web stack costs ~30 MB that `appview ingest` has no use for.
    import uvicorn

    from appview.app import create_app

    config = uvicorn.Config(create_app(settings, url), host=settings.host, port=settings.port,
                            log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    log.info("api.listening", url=f"http://{settings.host}:{settings.port}")
    await stop.wait()
    server.should_exit = True
    await task


async def _run(args: argparse.Namespace) -> int:
    ingest_settings, api_settings = IngesterSettings(), AppviewSettings()
    configure_logging(ingest_settings.log_format, ingest_settings.log_level)
    url, server = resolve_database(ingest_settings)
    upgrade(url)
    try:
        if args.command == "migrate":
            log.info("migrations.applied")
            return 0
        if args.command == "digest":
            async with await connect(url) as conn:
                print((await digest(conn, args.mode)).render())
            return 0
        if args.command == "rebuild":
            await rebuild(url, batch_size=ingest_settings.projector_batch)
            async with await connect(url) as conn:
                print((await digest(conn)).render())
            return 0
        if args.command == "backfill":
            counters = await backfill_once(
                ingest_settings, url, dids=args.did, pds_hosts=args.pds, force=args.force,
                relay=args.relay or (None if args.did or args.pds else ingest_settings.backfill_relay_url),
                progress=not args.no_progress and sys.stderr.isatty())
            print(f"backfill: {counters.done} repos done, {counters.failed} failed, {counters.records} records, "
                  f"{counters.changes} changes written")
            for did, reason in sorted(counters.failures.items()):
                print(f"  failed {did}: {reason}")
            return 0 if counters.failed == 0 else 1
        stop = _stop_event()
        tasks = []
        if args.command == "ingest" and ingest_settings.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(ingest_settings.metrics_port, addr=api_settings.host)
        if args.command == "run":
            # The ingester's CPU work must never stall the API's event loop: it gets its own process.
            import ingester.blobs.metrics
            import ingester.metrics

            port = free_port()
            fold_child_metrics(port, ingester.metrics, ingester.blobs.metrics)
            tasks.append(supervise(child_env(url, port), stop))
        if args.command == "ingest":
            tune_gc()
            tasks += [Ingester(ingest_settings, url).run(stop), watch_parent(stop)]
        if args.command in ("run", "serve"):
            tasks.append(_serve(api_settings, url, stop))
        await asyncio.gather(*tasks)
        return 0
    finally:
        if server is not None:
            server.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="appview", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "ingest", "serve", "migrate", "rebuild"):
        sub.add_parser(name)
    d = sub.add_parser("digest")
    d.add_argument("--mode", choices=["full", "content"], default="full")
    b = sub.add_parser("backfill", help="backfill repos from their PDS (resumable; done repos are skipped)")
    b.add_argument("--did", action="append", default=[], help="backfill this account (repeatable)")
    b.add_argument("--pds", action="append", default=[], help="discover with listRepos on this PDS (repeatable)")
    b.add_argument("--relay", help="discover with listReposByCollection on this relay (default BACKFILL_RELAY_URL)")
    b.add_argument("--force", action="store_true", help="re-run repos already done")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
