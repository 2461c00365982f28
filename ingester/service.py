"""Composition root of the write side: settings → identity → sources → pipeline → projector."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import psycopg
import structlog

from core.db.connect import connect
from core.identity import IdentityResolver
from ingester.backoff import pause
from ingester.pipeline.ingest import Ingest
from ingester.pipeline.labels import LabelIngest
from ingester.projection.runner import Projector
from ingester.settings import IngesterSettings
from ingester.sources.firehose import FirehoseSource, HandlerResult, source_name
from ingester.sources.labels import LabelResult, LabelSource
from ingester.sources.labels import source_name as label_source_name
from ingester.validate.records import RecordValidator
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
        self.sources: list[FirehoseSource] = []
        self.label_sources: list[LabelSource] = []
        self.projector = Projector(batch_size=settings.projector_batch,
                                   project_unverified=settings.project_unverified)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self.projector.run_forever(self.url, stop), name="projector")]
        tasks += [asyncio.create_task(self._follow(h, stop), name=f"source:{h}") for h in self.settings.hosts]
        tasks += [asyncio.create_task(self._follow_labels(lb, stop), name=f"labels:{lb}")
                  for lb in self.settings.labeler_list]
        try:
            await stop.wait()
        finally:
            await asyncio.sleep(0)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.resolver.aclose()

    async def _follow(self, host: str, stop: asyncio.Event) -> None:
        """Follow one host; if the database is unreachable, retry with backoff instead of dying."""
        delay = 0.5
        while not stop.is_set():
            try:
                await self._follow_once(host, stop)
                return
            except (OSError, psycopg.OperationalError) as e:
                log.warning("source.database_unavailable", host=host, error=str(e), retry_in_s=delay)
                await pause(stop, delay)
                delay = min(delay * 2, 30.0)

    async def _follow_once(self, host: str, stop: asyncio.Event) -> None:
        name = source_name(host)
        conn = await connect(self.url)
        ingest = Ingest(conn, source=name, resolver=self.resolver, verifier=self.verifier,
                        validator=self.validator, repos=self.repos)
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

        try:
            await source.run(handler, stop)
        finally:
            await conn.close()

    async def _follow_labels(self, labeler: str, stop: asyncio.Event) -> None:
        """Follow one labeler; if the database is unreachable, retry with backoff instead of dying."""
        delay = 0.5
        while not stop.is_set():
            try:
                await self._follow_labels_once(labeler, stop)
                return
            except (OSError, psycopg.OperationalError) as e:
                log.warning("labels.database_unavailable", labeler=labeler, error=str(e), retry_in_s=delay)
                await pause(stop, delay)
                delay = min(delay * 2, 30.0)

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
