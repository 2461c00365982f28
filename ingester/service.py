"""Composition root of the write side: settings → identity → sources → pipeline → projector."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial
from typing import Any

import psycopg
import structlog

from core.blobstore import open_store
from core.db.connect import connect
from core.handles import HandleResolver
from core.health import ComponentState
from core.identity import IdentityResolver
from ingester.backfill.discovery import discover
from ingester.backfill.gaps import Gaps
from ingester.backfill.worker import Backfiller, Counters, Outcome
from ingester.blobs.tasks import BlobTasks
from ingester.decode.frames import frame_seq
from ingester.eventlog.maintenance import log_maintenance
from ingester.heartbeat import HEARTBEAT_COMPONENT, Heartbeat
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.ingest import BatchOutcome, Ingest
from ingester.pipeline.jetstream import JetstreamIngest
from ingester.pipeline.labels import LabelIngest
from ingester.pipeline.parking import ParkingLot
from ingester.pipeline.resolution import Resolutions
from ingester.projection.runner import Projector
from ingester.settings import IngesterSettings
from ingester.sources.budget import ByteQueue
from ingester.sources.firehose import FirehoseSource, HandlerResult, source_name
from ingester.sources.jetstream import JetstreamSource
from ingester.sources.jetstream import source_name as jetstream_source_name
from ingester.sources.labels import LabelResult, LabelSource
from ingester.sources.labels import source_name as label_source_name
from ingester.sources.repos import RepoFetcher
from ingester.sources.start import StartCursors
from ingester.supervisor import Component, Probe, Supervisor
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
        self.resolver = resolver or IdentityResolver(plc_url=settings.plc_url, ttl_s=settings.did_cache_ttl_s,
                                                     allow_private=settings.outbound_allow_private)
        self.verifier = SignatureVerifier(self.resolver)
        self.validator = RecordValidator()
        self.repos: dict[str, ChainState] = {}
        self.tracked: set[str] = set()  # Jetstream sources' repos with in-scope history
        self.sources: list[FirehoseSource] = []  # the current source object of each firehose/Jetstream component
        self.label_sources: list[LabelSource] = []
        self._live: dict[str, FirehoseSource | LabelSource] = {}
        self._discovered = False
        self.supervisor: Supervisor | None = None
        self.projector = Projector(batch_size=settings.projector_batch,
                                   project_unverified=settings.project_unverified)
        self.handles = HandleResolver(self.resolver)
        self.resolutions = Resolutions(self.resolver, self.handles, deadline_s=settings.identity_deadline_s,
                                       per_host=settings.identity_per_host)
        self.gate = ResyncGate(buffer_live=settings.resync_buffer_live) if settings.resync_enabled else None
        self.backfiller = make_backfiller(settings, url, self.resolver, self.handles, self.repos, self.gate)
        self.start = StartCursors(firehose=settings.firehose_start_cursor, jetstream=settings.jetstream_start_cursor)
        self.gaps = Gaps(url, self.backfiller.fetcher, relay=settings.backfill_relay_url,
                         pds_hosts=settings.backfill_pds, submit=self.backfiller.submit if self.gate else None)
        self.backfiller.on_outcome = lambda o: self.gaps.note(o.did, o.ok)

    def components(self, blobs: BlobTasks | None) -> list[Component]:
        """Every long-running task of the ingester, each named as /health and the metrics name it."""
        s = self.settings
        out = [self.projector.component(self.url),
               Component("log-maintenance", "worker",
                         partial(log_maintenance, self.url, s.log_partition_size, s.log_retention))]
        for host in s.hosts:
            out.append(Component(source_name(host), "source", partial(self._follow_once, host)))
        for url in s.jetstreams:
            out.append(Component(jetstream_source_name(url, s.jetstream_version), "source",
                                 partial(self._follow_jetstream_once, url)))
        for labeler in s.labeler_list:
            out.append(Component(label_source_name(labeler), "source",
                                 partial(self._follow_labels_once, labeler)))
        for c in out:
            if c.kind == "source":
                c.probe = self._source_probe(c.name)
        if self.gate is not None:
            out.append(Component("resync", "worker", self._resync_worker))
            out.append(Component("resync-scheduler", "worker", self._resync))
        if blobs is not None:
            out += blobs.components()
        unique: dict[str, Component] = {}
        for c in out:
            if c.name in unique:  # two spellings of one host: follow it once
                log.warning("ingester.duplicate_component", component=c.name)
                continue
            unique[c.name] = c
        return list(unique.values())

    def _source_probe(self, name: str) -> Probe:
        def probe() -> tuple[ComponentState, dict[str, Any]]:
            source = self._live.get(name)
            if source is None:
                return "starting", {}
            # lag_s: the real lag of this source (/status): how long its oldest uncommitted frame has waited,
            # 0 when everything received is committed (an idle, caught-up stream is not "behind").
            queue = getattr(source, "queue", None)
            lag = round(queue.pending_s(), 3) if isinstance(queue, ByteQueue) else None
            return ("up" if source.connected.is_set() else "connecting"), {"cursor": source.cursor, "lag_s": lag}
        return probe

    def _after_restart(self, name: str, cursor: int | None) -> int | None:
        """A component restarted before it committed anything resumes from its predecessor's floor (just before the
        first frame it received from the live tip), not from a later tip: nothing it received is skipped."""
        before = self._live.get(name)
        if cursor is None and isinstance(before, FirehoseSource) and before.resume is not None:
            log.info("source.resumed_from_floor", source=name, cursor=before.resume)
            return before.resume
        return cursor

    def _register(self, source: FirehoseSource | LabelSource) -> None:
        """The current source object of a component (replacing the one before a restart)."""
        self._live[source.name] = source
        group: list[Any] = self.label_sources if isinstance(source, LabelSource) else self.sources
        for i, old in enumerate(group):
            if old.name == source.name:
                group[i] = source
                return
        group.append(source)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every component under one supervisor until `stop`; then release everything."""
        if self.settings.jetstreams and not self.settings.project_unverified:
            log.warning("jetstream.not_projected", reason="Jetstream events are unverified; PROJECT_UNVERIFIED is off")
        store = await open_store(self.settings) if self.settings.blob_mirror else None
        blobs = BlobTasks(self.settings, self.url, store, self.resolver) if store is not None else None
        supervisor = Supervisor(self.components(blobs), backoff_cap_s=self.settings.supervisor_backoff_cap_s,
                                healthy_after_s=self.settings.supervisor_healthy_after_s)
        heartbeat = Heartbeat(supervisor, self.url, self.settings.health_heartbeat_s)
        supervisor.add(Component(HEARTBEAT_COMPONENT, "worker", heartbeat.run))
        self.supervisor = supervisor
        try:
            await supervisor.run(stop)
        finally:
            await heartbeat.final()
            if blobs is not None:
                await blobs.aclose()
            if store is not None:
                await store.aclose()
            await self.backfiller.fetcher.aclose()
            await self.resolutions.aclose()
            await self.handles.aclose()
            await self.resolver.aclose()

    async def _resync_worker(self, stop: asyncio.Event) -> None:
        await self.backfiller.run(stop)

    async def _resync(self, stop: asyncio.Event) -> None:
        """Discovery once (if configured), then queue unfinished jobs for the resync worker every
        `backfill_retry_interval_s` (desynchronized repos the live stream enrols are queued at once)."""
        while not stop.is_set():
            async with await connect(self.url) as conn:
                if not self._discovered:
                    await discover(conn, self.backfiller.fetcher, relay=self.settings.backfill_relay_url,
                                   pds_hosts=self.settings.backfill_pds)
                    self._discovered = True
                await self.gaps.step(conn)  # re-discoveries owed by gaps; who waits for reactivation
                await self.backfiller.load(conn, max_attempts=self.settings.backfill_job_attempts)
            await self.gaps.pause(stop, self.settings.backfill_retry_interval_s)

    async def _follow_once(self, host: str, stop: asyncio.Event) -> None:
        name = source_name(host)
        conn = await connect(self.url)
        flusher: asyncio.Task[None] | None = None
        try:
            s = self.settings
            ingest = Ingest(conn, source=name, resolver=self.resolver, verifier=self.verifier,
                            validator=self.validator, repos=self.repos, gate=self.gate, handles=self.handles,
                            upstream=Upstream.of(host, s.relays), resolutions=self.resolutions,
                            parking=ParkingLot(max_repo_bytes=s.park_max_repo_bytes, max_bytes=s.park_max_bytes),
                            rev_skew_s=s.rev_future_skew_s)
            log.info("source.upstream", host=host, role=ingest.upstream.role)
            await ingest.load_tracked()
            cursor = self._after_restart(name, self.start.pick("firehose", name, await committed_cursor(conn, name)))
            source = FirehoseSource(host, cursor=cursor, batch_max=s.ingest_batch_max,
                                    queue_bytes=s.ingest_queue_bytes, guard=ingest.guard, frame_seq=frame_seq)
            self._register(source)
            ingest.on_gap = lambda src, why: self.gaps.gap(src, why, host=host, cursor=source.cursor)
            ingest.on_active = self.gaps.reactivated

            async def handler(frames: Sequence[bytes]) -> HandlerResult:
                nonlocal conn
                if conn.closed or conn.broken:
                    conn = ingest.conn = await connect(self.url)
                outcome = await ingest.handle(frames)
                reset = any(e.error == "FutureCursor" for e in outcome.errors)
                return HandlerResult(outcome.last_seq, reset)

            async def flush() -> None:
                # Parked frames whose identity arrived: processed between batches, in their DID's order.
                result = await handler([])
                if result.last_seq is not None:  # the cursor a reconnect resumes from
                    source.cursor = result.last_seq

            flusher = asyncio.create_task(ingest.run_parked(flush, stop), name=f"{name}:parked")
            await source.run(handler, stop)
        finally:
            if flusher is not None:
                flusher.cancel()
                await asyncio.gather(flusher, return_exceptions=True)
            await conn.close()

    async def _follow_jetstream_once(self, url: str, stop: asyncio.Event) -> None:
        version = self.settings.jetstream_version
        name = jetstream_source_name(url, version)
        conn = await connect(self.url)
        try:
            ingest = JetstreamIngest(conn, source=name, version=version, resolver=self.resolver,
                                     validator=self.validator, tracked=self.tracked, gate=self.gate)
            await ingest.load_tracked()
            source = JetstreamSource(url, version=version,
                                     cursor=self._after_restart(
                                         name, self.start.pick("jetstream", name, await committed_cursor(conn, name))),
                                     compress=self.settings.jetstream_compress,
                                     batch_max=self.settings.ingest_batch_max,
                                     queue_bytes=self.settings.ingest_queue_bytes, guard=ingest.guard)
            self._register(source)
            ingest.on_gap = source.on_gap = lambda src, why: self.gaps.gap(src, why, host=None, cursor=source.cursor)
            ingest.on_active = self.gaps.reactivated

            async def handler(frames: Sequence[bytes]) -> HandlerResult:
                nonlocal conn
                if conn.closed or conn.broken:
                    conn = ingest.conn = await connect(self.url)
                outcome: BatchOutcome = await ingest.handle(frames)
                return HandlerResult(outcome.last_seq)

            await source.run(handler, stop)
        finally:
            await conn.close()

    async def _follow_labels_once(self, labeler: str, stop: asyncio.Event) -> None:
        name = label_source_name(labeler)
        conn = await connect(self.url)
        try:
            verifier = LabelVerifier(self.resolver, expected_src=labeler if labeler.startswith("did:") else None)
            ingest = LabelIngest(conn, source=name, verifier=verifier)
            source = LabelSource(labeler, cursor=await committed_cursor(conn, name), resolver=self.resolver)
            self._register(source)

            async def handler(frame: bytes) -> LabelResult:
                nonlocal conn
                if conn.closed or conn.broken:
                    conn = ingest.conn = await connect(self.url)
                outcome = await ingest.handle(frame)
                return LabelResult(outcome.last_seq, outcome.error == "FutureCursor")

            await source.run(handler, stop)
        finally:
            await conn.close()


def make_backfiller(settings: IngesterSettings, url: str, resolver: IdentityResolver, handles: HandleResolver,
                    repos: dict[str, ChainState], gate: ResyncGate | None) -> Backfiller:
    fetcher = RepoFetcher(per_host=settings.backfill_per_host, rate_per_host=settings.backfill_rate_per_host,
                          timeout_s=settings.backfill_timeout_s, attempts=settings.backfill_attempts,
                          allow_private=settings.outbound_allow_private, max_repo_bytes=settings.getrepo_max_bytes)
    return Backfiller(url, resolver=resolver, verifier=SignatureVerifier(resolver), validator=RecordValidator(),
                      fetcher=fetcher, gate=gate, handles=handles, repos=repos,
                      concurrency=settings.backfill_concurrency, rev_skew_s=settings.rev_future_skew_s,
                      identity_deadline_s=settings.identity_deadline_s)


async def backfill_once(settings: IngesterSettings, url: str, *, dids: Sequence[str] = (),
                        pds_hosts: Sequence[str] = (), relay: str | None = None, force: bool = False,
                        retry_failed: bool = True, progress: bool = True) -> Counters:
    """`appview backfill`: discover, then work every unfinished job once, with a progress bar."""
    resolver = IdentityResolver(plc_url=settings.plc_url, ttl_s=settings.did_cache_ttl_s,
                                allow_private=settings.outbound_allow_private)
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
