"""The log rows a pipeline writes and the metrics of a committed batch (shared by every source's pipeline and the
backfill)."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from core.events import Commit, RecordEvent, RepoEvent
from core.handles import HandleResolver
from core.identity import IdentityResolver, ResolveError
from ingester import metrics
from ingester.eventlog.append import AppendResult
from ingester.pipeline.lookups import error_payload, identity_payload
from ingester.validate.records import UNSTORABLE, RecordValidator

log = structlog.get_logger(__name__)


def note_append(source: str, result: AppendResult, last_seq: int | None, last_time: str | None) -> int:
    """Metrics of one committed batch (shared by every source's pipeline); returns the rows appended."""
    metrics.APPENDED.labels("record_event").inc(result.records)
    metrics.APPENDED.labels("repo_event").inc(result.repo_events)
    metrics.DUPLICATES.inc(result.duplicates)
    if last_seq is not None:
        metrics.SOURCE_CURSOR.labels(source).set(last_seq)
    if last_time is not None:
        metrics.INGEST_LAG.labels(source).set(_age_seconds(last_time))
    return result.records + result.repo_events


def _age_seconds(time: str) -> float:
    """Now minus an event's (informal) `time`; only a gauge, never used for ordering."""
    try:
        return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(time)).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def commit_events(c: Commit, source: str, validator: RecordValidator, *, verified: bool) -> list[RecordEvent]:
    """The log rows of a commit's in-scope ops, each validated (invalid ones are kept, marked rejected)."""
    out = []
    for op in c.ops:
        rejected = None
        if op.action != "delete":
            rejected = validator.check(op.collection, op.rkey, op.record)
            if rejected is not None:
                metrics.REJECTED.labels(op.collection).inc()
                log.info("ingest.rejected", did=c.did, path=f"{op.collection}/{op.rkey}", reason=rejected)
        record = None if rejected in UNSTORABLE else op.record
        out.append(RecordEvent(c.did, op.collection, op.rkey, c.rev, op.action, op.cid, record,
                               source, c.seq, verified, rejected))
    return out


async def identity_event(resolver: IdentityResolver, handles: HandleResolver | None, did: str,
                         handle: str | None, source: str, seq: int | None, *, force: bool) -> RepoEvent:
    """An `identity` log row from the (re)resolved DID document; the handle verified both ways if we can."""
    try:
        info = await resolver.resolve(did, force=force)
        verified = await handles.verified_handle(info, force=force) if handles is not None else None
        payload = identity_payload(info, verified or handle)
    except ResolveError as e:
        payload = error_payload(e, handle)
    return RepoEvent(did, "identity", payload, source, seq)
