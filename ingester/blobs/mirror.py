"""The mirror worker: keep a CID-verified copy of every referenced audio blob in the store.

Fed from the `track` projection (set-based reconcile each pass), it fetches due blobs from the
artist's PDS with a global and a per-PDS concurrency limit, backs off per PDS on transient
failures and per blob in Postgres, and releases blobs no live track references any more.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import psycopg
import structlog

from core.blobstore import BlobStore, safe_audio_mime
from core.blobstore.cid import UnsupportedCid, expected_digest
from core.db.connect import connect
from core.identity import IdentityResolver, ResolveError
from core.outbound import RefusedAddress, check_url
from core.retry import Backoff, pause
from ingester.blobs import state
from ingester.blobs.fetch import Fetched, GuardedHttp
from ingester.blobs.metrics import FAILURES, MIRRORED, MIRRORED_BYTES, RELEASED
from ingester.settings import IngesterSettings

log = structlog.get_logger(__name__)

MAX_RETRY = timedelta(hours=6)


def retry_after(attempts: int) -> timedelta:
    """When a blob that failed `attempts` times is due again (kept in Postgres, so no jitter)."""
    b = Backoff(base_s=30, cap_s=MAX_RETRY.total_seconds(), jitter=False)
    b.attempt = min(attempts, 30)
    return timedelta(seconds=b.next_delay())


def _host(pds: str) -> str:
    return urlsplit(pds).netloc.lower()


class BlobMirror:
    def __init__(self, settings: IngesterSettings, url: str, store: BlobStore,
                 resolver: IdentityResolver | None = None, http: GuardedHttp | None = None) -> None:
        self.settings, self.url, self.store = settings, url, store
        self.resolver = resolver or IdentityResolver(plc_url=settings.plc_url,
                                                     allow_private=settings.outbound_allow_private)
        self._own_resolver = resolver is None
        self.http = http or GuardedHttp(allow_private=settings.outbound_allow_private,
                                        timeout_s=settings.blob_fetch_timeout_s,
                                        limit=settings.blob_fetch_concurrency * 2,
                                        limit_per_host=settings.blob_per_pds_concurrency)
        self.spool = settings.data_dir / "blob-spool"
        self._slots = asyncio.Semaphore(settings.blob_fetch_concurrency)
        self._per_pds: dict[str, asyncio.Semaphore] = {}
        self._pds_backoff: dict[str, tuple[Backoff, float]] = {}  # host → (its backoff, paused until)
        self.inflight: dict[str, asyncio.Task[None]] = {}
        # The pass (with its transactions) and the fetch tasks' outcome writes use separate connections.
        self.conn: psycopg.AsyncConnection | None = None
        self.task_conn: psycopg.AsyncConnection | None = None

    async def _db(self) -> psycopg.AsyncConnection:
        if self.conn is None or self.conn.closed or self.conn.broken:
            self.conn = await connect(self.url, autocommit=True)
        return self.conn

    async def _task_db(self) -> psycopg.AsyncConnection:
        if self.task_conn is None or self.task_conn.closed or self.task_conn.broken:
            self.task_conn = await connect(self.url, autocommit=True)
        return self.task_conn

    async def run(self, stop: asyncio.Event) -> None:
        """Passes every `blob_scan_interval_s` until `stop`. A failure (database gone…) ends the run;
        the supervisor restarts it, so the mirror can be run again after it raised."""
        try:
            while not stop.is_set():
                await self.step()
                await pause(stop, self.settings.blob_scan_interval_s)
        finally:
            await self._end_run()

    async def _end_run(self) -> None:
        for t in self.inflight.values():
            t.cancel()
        await asyncio.gather(*self.inflight.values(), return_exceptions=True)
        for c in (self.conn, self.task_conn):
            if c is not None:
                await c.close()
        self.conn = self.task_conn = None

    async def aclose(self) -> None:
        await self._end_run()
        await self.http.aclose()
        if self._own_resolver:
            await self.resolver.aclose()

    async def step(self) -> int:
        """One pass: reconcile, start due fetches, release unreferenced blobs. Returns fetches started."""
        conn = await self._db()
        await state.reconcile(conn, self.store.kind)
        started = 0
        free = self.settings.blob_fetch_concurrency * 2 - len(self.inflight)
        if free > 0:
            now = time.monotonic()
            for due in await state.claim(conn, free, list(self.inflight)):
                if due.pds and (paused := self._pds_backoff.get(_host(due.pds))) and paused[1] > now:
                    continue
                task = asyncio.create_task(self._mirror_one(due), name=f"blob:{due.cid}")
                self.inflight[due.cid] = task
                task.add_done_callback(self._forget(due.cid))
                started += 1
        await self._release(conn)
        return started

    def _forget(self, cid: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self.inflight.pop(cid, None)
        return forget

    async def drain(self, max_passes: int = 10_000) -> None:
        """Run passes until nothing is due or in flight (tests, benchmarks, one-shot CLI)."""
        for _ in range(max_passes):
            started = await self.step()
            if self.inflight:
                await asyncio.wait(list(self.inflight.values()))
            elif not started:
                await self._release(await self._db())
                return

    async def _release(self, conn: psycopg.AsyncConnection) -> None:
        grace = timedelta(seconds=self.settings.blob_release_grace_s)
        cids = [c for c in await state.due_releases(conn, grace) if c not in self.inflight]
        doomed: dict[str, str | None] = dict(await state.release(conn, cids) if cids else [])
        for cid, kind in await state.released_in_store(conn):
            doomed.setdefault(cid, kind)
        for cid, store in doomed.items():
            if store is None:
                continue
            if store == self.store.kind:
                try:
                    await self.store.delete(cid)
                except Exception as e:  # a store outage must not stop the mirror; retried next pass
                    log.warning("blobs.release_failed", cid=cid, error=str(e))
                    continue
            await state.forget_store(conn, cid)
            RELEASED.inc()
            log.info("blobs.released", cid=cid)

    async def _mirror_one(self, due: state.Due) -> None:
        try:
            await self._mirror(await self._task_db(), due)
        except (OSError, psycopg.Error) as e:
            log.warning("blobs.mirror_error", cid=due.cid, error=str(e))

    async def _mirror(self, conn: psycopg.AsyncConnection, due: state.Due) -> None:
        try:
            digest = expected_digest(due.cid)
        except UnsupportedCid:
            await self._fail(conn, due, "failed", "unsupported_cid", None)
            return
        pds = due.pds
        if not pds:
            try:
                pds = (await self.resolver.resolve(due.did)).pds
            except ResolveError as e:
                await self._fail(conn, due, "failed", f"unresolvable:{e.reason}", retry_after(due.attempts))
                return
        if not pds:
            await self._fail(conn, due, "failed", "no_pds", retry_after(due.attempts))
            return
        try:
            check_url(pds, allow_private=self.settings.outbound_allow_private)
        except RefusedAddress as e:
            # The usual cause in development: a local PDS over plain http. Say what to set (rate-limited by
            # the log's repeat filter: one line per PDS, not per blob).
            log.warning("blobs.pds_refused", pds=_host(pds), reason=str(e)[:200],
                        hint="a PDS on a private address or over plain http is refused; for a local development "
                             "PDS set OUTBOUND_ALLOW_PRIVATE=true (never in production)")
            await self._fail(conn, due, "failed", "refused_address", MAX_RETRY)
            return
        host = _host(pds)
        self.spool.mkdir(parents=True, exist_ok=True)
        dest = self.spool / f"{uuid.uuid4().hex}.part"
        async with self._slots, self._per_pds.setdefault(host, asyncio.Semaphore(
                self.settings.blob_per_pds_concurrency)):
            got = await self.http.fetch_blob(pds, due.did, due.cid, digest, dest, self.settings.blob_max_bytes)
        await self._outcome(conn, due, host, dest, got)

    async def _outcome(self, conn: psycopg.AsyncConnection, due: state.Due, host: str, dest: Path,
                       got: Fetched) -> None:
        if got.ok:
            self._pds_backoff.pop(host, None)
            try:
                await self.store.put_verified(due.cid, dest, got.size, safe_audio_mime(due.mime or got.mime))
            except Exception as e:  # store outage: keep the blob pending, retry later
                await anyio.Path(dest).unlink(missing_ok=True)
                await self._fail(conn, due, "pending", f"store_error:{type(e).__name__}", retry_after(due.attempts))
                return
            if not await state.mark_mirrored(conn, due.cid, got.size, self.store.kind, got.mime):
                await self.store.delete(due.cid)  # released while we fetched
                return
            MIRRORED.labels(self.store.kind).inc()
            MIRRORED_BYTES.inc(got.size)
            log.info("blobs.mirrored", cid=due.cid, size=got.size, store=self.store.kind)
            return
        reason = got.reason or "unknown"
        if got.retry:
            backoff = self._pds_backoff.get(host, (Backoff(base_s=2.0, cap_s=300.0), 0.0))[0]
            self._pds_backoff[host] = (backoff, time.monotonic() + backoff.next_delay())
            await self._fail(conn, due, "pending" if due.attempts < 5 else "failed", reason,
                             retry_after(due.attempts))
        elif got.gone:
            await self._fail(conn, due, "gone", reason, timedelta(hours=24))
        elif reason == "too_large":
            await self._fail(conn, due, "failed", reason, None)
        else:  # cid mismatch, refused address, other 4xx: retry rarely
            await self._fail(conn, due, "failed", reason, MAX_RETRY)

    async def _fail(self, conn: psycopg.AsyncConnection, due: state.Due, new_state: str, reason: str,
                    retry_in: timedelta | None) -> None:
        FAILURES.labels(reason.split(":", 1)[0]).inc()
        log.info("blobs.not_mirrored", cid=due.cid, did=due.did, state=new_state, reason=reason)
        await state.mark_failed(conn, due.cid, new_state, reason, retry_in)
