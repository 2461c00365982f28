"""The `appview` command: one composition root for both processes and the maintenance commands.

  appview run       migrations + API, and the ingester in a supervised child process (the newcomer's default)
  appview serve --workers N   N API processes on one port (also `run --workers N`; default API_WORKERS)
  appview ingest    the write side only      appview serve    the read side only
  appview migrate   apply migrations         appview rebuild  re-fold projections from the log
  appview digest    print a digest of every projection
  appview backfill  getRepo + diff for discovered repos (--relay, --pds) or given ones (--did)
  appview demo      the AppView with data, offline: a local PDS + PLC with a seeded catalogue

  appview ingest --cursor N         start the firehose sources at seq N, whatever is committed (0: all retained)
  appview rebuild --revalidate      re-judge every logged record against the current lexicons, then rebuild
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import structlog

from appview.settings import AppviewSettings
from cli.database import AlreadyRunning, hold_ingest_lock, resolve_database
from cli.supervise import child_env, fold_child_metrics, free_port, supervise, watch_parent
from core.db.connect import connect
from core.db.migrate import SchemaNotAtHead, upgrade, wait_for_head
from core.lexicon import LexiconsMissing
from core.logs import configure_logging
from core.process import tune_gc
from core.settings import CoreSettings, SettingsError, load_settings
from ingester.leadership import run_ingester
from ingester.projection.digest import digest
from ingester.projection.rebuild import TrimmedLog, rebuild
from ingester.service import backfill_once
from ingester.settings import IngesterSettings
from ingester.validate.records import load_record_lexicons
from ingester.validate.revalidate import revalidate

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
    tune_gc()  # the app is built: its objects are frozen with the rest of start-up
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
    task = asyncio.create_task(server.serve())
    # Only once the socket is bound: a log line that says "listening" before that would be a lie.
    while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn exposes a bool, not an event)
        await asyncio.sleep(0.05)
    if task.done():
        await task  # the bind failed (port taken…): its error, not a silent wait for a stop that never comes
        raise SystemExit(f"api: could not listen on {settings.host}:{settings.port}")
    log.info("api.listening", url=f"http://{settings.host}:{settings.port}")
    await stop.wait()
    log.info("api.stopping")
    server.should_exit = True
    await task


async def _demo(args: argparse.Namespace) -> int:
    """`appview demo`: `run` against the demo's own PDS + PLC and catalogue (cli/demo.py)."""
    from cli.demo import DemoError, demo_world

    core = CoreSettings()
    configure_logging(core.log_format, core.log_level)
    try:
        async with demo_world(core.data_dir, reset=args.reset) as demo:
            os.environ.update(demo.env)
            return await _run(argparse.Namespace(command="run", demo=demo))
    except DemoError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2


def _settings() -> tuple[IngesterSettings, AppviewSettings]:
    """Both sides' settings, or one SettingsError listing every bad variable of either."""
    errors: list[str] = []
    ingest = api = None
    try:
        ingest = load_settings(IngesterSettings)
    except SettingsError as e:
        errors.append(str(e))
    try:
        api = load_settings(AppviewSettings)
    except SettingsError as e:
        errors += [line for line in str(e).splitlines() if line not in "\n".join(errors).splitlines()]
    if ingest is None or api is None:
        raise SettingsError("\n".join(errors))
    return ingest, api


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return await _demo(args)
    # Our connections say who holds them (pg_stat_activity.application_name): the budget in README is checkable.
    os.environ["PGAPPNAME"] = f"appview-{'api' if args.command in ('run', 'serve', 'demo') else args.command}"
    # Checked before anything starts: a bad value is a one-line error and exit status 2 (see main).
    ingest_settings, api_settings = _settings()
    configure_logging(ingest_settings.log_format, ingest_settings.log_level)
    if args.command in ("run", "ingest") and not ingest_settings.database_url:
        try:
            lock = hold_ingest_lock(ingest_settings.data_dir.resolve())  # noqa: F841 (held while we run)
        except AlreadyRunning as e:
            print(f"appview: {e}", file=sys.stderr)
            return 2
    if args.command in ("run", "ingest", "serve", "backfill") or getattr(args, "revalidate", False):
        load_record_lexicons()  # before anything starts: LexiconsMissing names the folder it looked in
    url, server = resolve_database(ingest_settings)
    try:
        if args.command == "migrate" or ingest_settings.migrate_on_start:
            upgrade(url)
        else:  # a separate job migrates (compose, Kubernetes): wait for it, never run DDL from a replica
            wait_for_head(url, ingest_settings.migrate_wait_s,
                          lambda why: log.info("migrations.waiting", reason=why, command=args.command))
        if args.command == "migrate":
            log.info("migrations.applied")
            return 0
        if args.command == "digest":
            async with await connect(url) as conn:
                print((await digest(conn, args.mode)).render())
            return 0
        if args.command == "rebuild":
            if args.revalidate:
                async with await connect(url) as conn:
                    print((await revalidate(conn)).render())
            try:
                await rebuild(url)  # its own large pages (a bulk load), not PROJECTOR_BATCH
            except TrimmedLog as e:
                print(f"appview: rebuild refused: {e}", file=sys.stderr)
                return 1
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
        workers = getattr(args, "workers", None) or api_settings.api_workers
        child_metrics = None
        if args.command == "run":
            # The ingester's CPU work must never stall the API's event loop: it gets its own process.
            import ingester.blobs.metrics
            import ingester.metrics

            port = free_port()
            child_metrics = f"http://127.0.0.1:{port}/metrics"
            if workers == 1:  # several workers fold it into their own /metrics (cli/api_workers.py)
                fold_child_metrics(port, ingester.metrics, ingester.blobs.metrics)
            tasks.append(supervise(child_env(url, port), stop))
        if args.command == "ingest":
            tune_gc()
            # One leader per database (ingester/leadership.py): this instance stands by until it leads.
            tasks += [run_ingester(ingest_settings, url, stop, firehose_cursor=args.cursor,
                                   jetstream_cursor=args.jetstream_cursor), watch_parent(stop)]
        if args.command in ("run", "serve") and workers > 1:
            from cli.api_workers import serve_workers

            tasks.append(serve_workers(api_settings, url, stop, workers, ingester_metrics_url=child_metrics))
        elif args.command in ("run", "serve"):
            tasks.append(_serve(api_settings, url, stop))
        if getattr(args, "demo", None) is not None:
            from cli.demo import announce

            tasks.append(announce(f"http://{api_settings.host}:{api_settings.port}", args.demo.state, stop))
        await asyncio.gather(*tasks)
        log.info("appview.stopped", command=args.command)
        return 0
    finally:
        if server is not None:
            server.cleanup()


_COMMANDS = {
    "run": "migrations, then the ingester and the API in one process (the newcomer's default)",
    "ingest": "the write side only: sources, log, projector, backfill, blob mirror",
    "serve": "the read side only: the HTTP API",
    "migrate": "apply the database migrations and exit",
    "rebuild": "re-fold every projection from the log into shadow tables, swapped in atomically",
}


_DEMO_HELP = ("the AppView with data, offline: starts the reference PDS + PLC (tests/localnet), writes a small "
              "plyr.fm catalogue into it, and runs everything against it (data under $APPVIEW_DATA_DIR/demo)")


def _seq(value: str) -> int:
    # ASCII digits only (no sign, spaces or other scripts' digits), and a seq fits a Postgres bigint
    if not (value.isascii() and value.isdigit()) or int(value) > 2**63 - 1:
        raise argparse.ArgumentTypeError(f"a cursor is a seq >= 0, got {value[:40]!r}")
    return int(value)


def _workers(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError(f"--workers is an integer from 1 to 64, got {value[:40]!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="appview", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    parsers = {name: sub.add_parser(name, help=text, description=text) for name, text in _COMMANDS.items()}
    parsers["ingest"].add_argument(
        "--cursor", type=_seq, help="start every firehose source at this seq, whatever is committed "
        "(0: all the host retains); without it: the committed cursor, else FIREHOSE_START_CURSOR")
    parsers["ingest"].add_argument("--jetstream-cursor", type=_seq,
                                   help="the same for Jetstream sources (v2 seq / v1 time_us)")
    for name in ("run", "serve"):
        parsers[name].add_argument("--workers", type=_workers, metavar="N",
                                   help="API processes sharing the port (default API_WORKERS, 1)")
    parsers["rebuild"].add_argument(
        "--revalidate", action="store_true",
        help="first re-judge every logged record against the current lexicons (re-accepts and newly rejects), "
             "then rebuild")
    d = sub.add_parser("digest", help="print a sha256 per projection table")
    d.add_argument("--mode", choices=["full", "content"], default="full")
    demo = sub.add_parser("demo", help=_DEMO_HELP, description=_DEMO_HELP)
    demo.add_argument("--reset", action="store_true", help="forget the demo's data and start a new one")
    b = sub.add_parser("backfill", help="backfill repos from their PDS (resumable; done repos are skipped)")
    b.add_argument("--did", action="append", default=[], help="backfill this account (repeatable)")
    b.add_argument("--pds", action="append", default=[], help="discover with listRepos on this PDS (repeatable)")
    b.add_argument("--relay", help="discover with listReposByCollection on this relay (default BACKFILL_RELAY_URL)")
    b.add_argument("--force", action="store_true", help="re-run repos already done")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except SettingsError as e:
        for line in str(e).splitlines():
            print(f"appview: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except LexiconsMissing as e:  # a start-up error: never run on without the lexicons
        print(f"appview: {e}", file=sys.stderr)
        return 2
    except SchemaNotAtHead as e:  # MIGRATE_ON_START=false and the migrate job did not (or cannot) bring it to head
        print(f"appview: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
