"""Composition root of the write side: settings → identity → sources → pipeline → projector."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import psycopg
import structlog

from core.blobstore import open_store
from core.db.connect import connect
from core.handles import HandleResolver
from core.identity import IdentityResolver
from ingester.backfill.discovery import discover
from ingester.backfill.worker import Backfiller, Counters, Outcome
from ingester.backoff import pause
from ingester.blobs.tasks import start_blob_tasks
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.ingest import BatchOutcome, Ingest
from ingester.pipeline.jetstream import JetstreamIngest
from ingester.pipeline.labels import LabelIngest
from ingester.pipeline.parking import ParkingLot
from ingester.pipeline.resolution import Resolutions
from ingester.projection.runner import Projector
from ingester.settings import IngesterSettings
from ingester.sources.firehose import FirehoseSource, HandlerResult, source_name
from ingester.sources.jetstream import JetstreamSource
from ingester.sources.jetstream import source_name as jetstream_source_name
from ingester.sources.labels import LabelResult, LabelSource
from ingester.sources.labels import source_name as label_source_name
from ingester.sources.repos import RepoFetcher
from ingester.validate.records import RecordValidator
from ingester.verify.authority import Upstream
from ingester.verify.chain import ChainState
from ingester.verify.labels import LabelVerifier
from ingester.verify.signature import SignatureVerifier

log = structlog.get_logger(__name__)


async def committed_cursor(conn: psycopg.AsyncConnection, source: str) -> int | None:
    async with conn.cursor() as cur:
        await cur.execute("SELECT cursor FROM source_cursor WHERE source = %s", (source,))
        row = await cur.fetchone()
    await conn.commit()
    return int(row[0]) if row else None


class Ingester:
    def __init__(self, settings: IngesterSettings, url: str, resolver: IdentityResolver | None = None) -> None:
        self.settings = settings
        self.url = url
        self.resolver = resolver or IdentityResolver(plc_url=settings.plc_url, ttl_s=settings.did_cache_ttl_s)
        self.verifier = SignatureVerifier(self.resolver)
        self.validator = RecordValidator()
        self.repos: dict[str, ChainState] = {}
        self.tracked: set[str] = set()  # Jetstream sources' repos with in-scope history
        self.sources: list[FirehoseSource] = []
        self.label_sources: list[LabelSource] = []
        self.projector = Projector(batch_size=settings.projector_batch,
                                   project_unverified=settings.project_unverified)
        self.handles = HandleResolver(self.resolver)
        self.resolutions = Resolutions(self.resolver, self.handles, deadline_s=settings.identity_deadline_s,
                                       per_host=settings.identity_per_host)
        self.gate = ResyncGate(buffer_live=settings.resync_buffer_live) if settings.resync_enabled else None
        self.backfiller = make_backfiller(settings, url, self.resolver, self.handles, self.repos, self.gate)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.projector.run_forever(self.url, stop), name="projector")]
        tasks += [asyncio.create_task(self._follow(h, stop), name=f"source:{h}") for h in self.settings.hosts]
        tasks += [asyncio.create_task(self._follow(u, stop, self._follow_jetstream_once), name=f"jetstream:{u}")
                  for u in self.settings.jetstreams]
        if self.settings.jetstreams and not self.settings.project_unverified:
            log.warning("jetstream.not_projected", reason="Jetstream events are unverified; PROJECT_UNVERIFIED is off")
        if self.gate is not None:
            tasks.append(asyncio.create_task(self._resync(stop), name="resync"))
        store = await open_store(self.settings) if self.settings.blob_mirror else None
        if store is not None:
            tasks += start_blob_tasks(self.settings, self.url, store, self.resolver, stop)
        tasks += [asyncio.create_task(self._follow(lb, stop, self._follow_labels_once), name=f"labels:{lb}")
                  for lb in self.settings.labeler_list]
        try:
            await stop.wait()
        finally:
            await asyncio.sleep(0)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if store is not None:
                await store.aclose()
            await self.backfiller.fetcher.aclose()
            await self.resolutions.aclose()
            await self.handles.aclose()
            await self.resolver.aclose()

    async def _resync(self, stop: asyncio.Event) -> None:
        """Discovery once (if configured), then work the queue; unfinished jobs are picked up again
        every `backfill_retry_interval_s` (and desynchronized repos the live stream enrols at once)."""
        runner = asyncio.create_task(self.backfiller.run(stop))
        discovered = False
        try:
            while not stop.is_set():
                try:
                    async with await connect(self.url) as conn:
                        if not discovered:
                            await discover(conn, self.backfiller.fetcher, relay=self.settings.backfill_relay_url,
                                           pds_hosts=self.settings.backfill_pds)
                            discovered = True
                        await self.backfiller.load(conn, max_attempts=self.settings.backfill_job_attempts)
                except (OSError, psycopg.OperationalError) as e:
                    log.warning("resync.database_unavailable", error=str(e))
                await pause(stop, self.settings.backfill_retry_interval_s)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    async def _follow(self, host: str, stop: asyncio.Event,
                      once: Callable[[str, asyncio.Event], Awaitable[None]] | None = None) -> None:
        """Follow one host; if the database is unreachable, retry with backoff instead of dying."""
        delay = 0.5
        while not stop.is_set():
            try:
                await (once or self._follow_once)(host, stop)
                return
            except (OSError, psycopg.OperationalError) as e:
                log.warning("source.database_unavailable", host=host, error=str(e), retry_in_s=delay)
                await pause(stop, delay)
                delay = min(delay * 2, 30.0)

    async def _follow_once(self, host: str, stop: asyncio.Event) -> None:
        name = source_name(host)
        conn = await connect(self.url)
        s = self.settings
        ingest = Ingest(conn, source=name, resolver=self.resolver, verifier=self.verifier,
                        validator=self.validator, repos=self.repos, gate=self.gate, handles=self.handles,
                        upstream=Upstream.of(host, s.relays), resolutions=self.resolutions,
                        parking=ParkingLot(max_repo_bytes=s.park_max_repo_bytes, max_bytes=s.park_max_bytes),
                        rev_skew_s=s.rev_future_skew_s)
        log.info("source.upstream", host=host, role=ingest.upstream.role)
        await ingest.load_tracked()
        source = FirehoseSource(host, cursor=await committed_cursor(conn, name),
                                batch_max=self.settings.ingest_batch_max)
        self.sources.append(source)

        async def handler(frames: Sequence[bytes]) -> HandlerResult:
            nonlocal conn
            if conn.closed or conn.broken:
                conn = ingest.conn = await connect(self.url)
            outcome = await ingest.handle(frames)
            reset = any(e.error == "FutureCursor" for e in outcome.errors)
            return HandlerResult(outcome.last_seq, reset)

        async def flush() -> None:
            result = await handler([])
            if result.last_seq is not None:  # the cursor a reconnect resumes from
                source.cursor = result.last_seq

        flusher = asyncio.create_task(ingest.run_parked(flush, stop), name=f"{name}:parked")
        try:
            await source.run(handler, stop)
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await conn.close()

    async def _follow_jetstream_once(self, url: str, stop: asyncio.Event) -> None:
        version = self.settings.jetstream_version
        name = jetstream_source_name(url, version)
        conn = await connect(self.url)
        ingest = JetstreamIngest(conn, source=name, version=version, resolver=self.resolver,
                                 validator=self.validator, tracked=self.tracked, gate=self.gate)
        await ingest.load_tracked()
        source = JetstreamSource(url, version=version, cursor=await committed_cursor(conn, name),
                                 compress=self.settings.jetstream_compress, batch_max=self.settings.ingest_batch_max)
        self.sources.append(source)

        async def handler(frames: Sequence[bytes]) -> HandlerResult:
            nonlocal conn
            if conn.closed or conn.broken:
                conn = ingest.conn = await connect(self.url)
            outcome: BatchOutcome = await ingest.handle(frames)
            return HandlerResult(outcome.last_seq)

        try:
            await source.run(handler, stop)
        finally:
            await conn.close()

    async def _follow_labels_once(self, labeler: str, stop: asyncio.Event) -> None:
        name = label_source_name(labeler)
        conn = await connect(self.url)
        verifier = LabelVerifier(self.resolver, expected_src=labeler if labeler.startswith("did:") else None)
        ingest = LabelIngest(conn, source=name, verifier=verifier)
        source = LabelSource(labeler, cursor=await committed_cursor(conn, name), resolver=self.resolver)
        self.label_sources.append(source)

        async def handler(frame: bytes) -> LabelResult:
            nonlocal conn
            if conn.closed or conn.broken:
                conn = ingest.conn = await connect(self.url)
            outcome = await ingest.handle(frame)
            return LabelResult(outcome.last_seq, outcome.error == "FutureCursor")

        try:
            await source.run(handler, stop)
        finally:
            await conn.close()


def make_backfiller(settings: IngesterSettings, url: str, resolver: IdentityResolver, handles: HandleResolver,
                    repos: dict[str, ChainState], gate: ResyncGate | None) -> Backfiller:
    fetcher = RepoFetcher(per_host=settings.backfill_per_host, rate_per_host=settings.backfill_rate_per_host,
                          timeout_s=settings.backfill_timeout_s, attempts=settings.backfill_attempts)
    return Backfiller(url, resolver=resolver, verifier=SignatureVerifier(resolver), validator=RecordValidator(),
                      fetcher=fetcher, gate=gate, handles=handles, repos=repos,
                      concurrency=settings.backfill_concurrency, rev_skew_s=settings.rev_future_skew_s,
                      identity_deadline_s=settings.identity_deadline_s)


async def backfill_once(settings: IngesterSettings, url: str, *, dids: Sequence[str] = (),
                        pds_hosts: Sequence[str] = (), relay: str | None = None, force: bool = False,
                        retry_failed: bool = True, progress: bool = True) -> Counters:
    """`appview backfill`: discover, then work every unfinished job once, with a progress bar."""
    resolver = IdentityResolver(plc_url=settings.plc_url, ttl_s=settings.did_cache_ttl_s)
    handles = HandleResolver(resolver)
    backfiller = make_backfiller(settings, url, resolver, handles, {}, None)
    try:
        async with await connect(url) as conn:
            await Ingest(conn, source="backfill", resolver=resolver, verifier=backfiller.verifier,
                         validator=backfiller.validator, repos=backfiller.repos).load_tracked()
            await discover(conn, backfiller.fetcher, relay=relay, pds_hosts=pds_hosts, dids=dids, force=force)
            await backfiller.load(conn, retry_failed=retry_failed, max_attempts=settings.backfill_job_attempts)
        total = backfiller.queued
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="repo", desc="backfill", dynamic_ncols=True)

        def outcome(o: Outcome) -> None:
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=backfiller.counters.failed, changes=backfiller.counters.changes)

        backfiller.on_outcome = outcome
        counters = await backfiller.run(asyncio.Event(), until_idle=True)
        if bar is not None:
            bar.close()
        return counters
    finally:
        await backfiller.fetcher.aclose()
        await handles.aclose()
        await resolver.aclose()
