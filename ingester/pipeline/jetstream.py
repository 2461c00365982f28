"""Jetstream frames → unverified log rows → one append per batch, with the source cursor.

Same log, rules and transaction as the firehose pipeline (`ingester.pipeline.ingest`), minus what a
Jetstream event cannot carry: there is no signature, so every record event is `verified=false` and
never touches `repo_state` (an unverifiable rev must not move a repo's chain); the one check is the
record's CID, recomputed from its JSON — a mismatch is logged as rejected and never projected. Whether
unverified events are projected at all is the projector's policy (`PROJECT_UNVERIFIED`).

A repo is tracked (its identity/account events matter) once it has in-scope history in the log, from
any source; its first in-scope event here also logs its resolved identity, as the firehose does. Bluesky
profile events (`app.bsky.actor.profile`) come for the whole network: only tracked repos' are kept, the rest
are skipped at decode, before any hashing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Container, Sequence

import psycopg
import structlog

from core.events import AccountFrame, ErrorFrame, IdentityFrame, InfoFrame, RecordEvent, RepoEvent, Skipped
from core.identity import IdentityResolver, ResolveError
from ingester import metrics
from ingester.decode.jetstream import JetstreamCommit, JetstreamError, JetstreamFrame, JetstreamSync, Version
from ingester.decode.jetstream import decode_jetstream as decode
from ingester.eventlog.append import append_batch
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.ingest import BatchOutcome, identity_payload, note_append
from ingester.validate.records import UNSTORABLE, RecordValidator
from ingester.verify.chain import tid_micros, too_far_in_future

log = structlog.get_logger(__name__)

_TRACKED = "SELECT did FROM repo_state UNION SELECT DISTINCT did FROM record_event"
BAD_REV = "bad rev: not a TID, or too far in the future"


class JetstreamIngest:
    def __init__(
        self,
        conn: psycopg.AsyncConnection,
        *,
        source: str,
        version: Version,
        resolver: IdentityResolver,
        validator: RecordValidator,
        tracked: set[str] | None = None,
        gate: ResyncGate | None = None,
    ) -> None:
        self.conn = conn
        self.source = source
        self.version = version
        self.resolver = resolver
        self.validator = validator
        self.tracked: set[str] = set() if tracked is None else tracked
        self.gate = gate  # a `#sync` enrols the repo for a verified getRepo resync

    async def load_tracked(self) -> None:
        async with self.conn.cursor() as cur:
            await cur.execute(_TRACKED)
            self.tracked.update(r[0] for r in await cur.fetchall())
        await self.conn.commit()

    async def handle(self, frames: Sequence[bytes | str]) -> BatchOutcome:
        out = BatchOutcome()
        events: list[RecordEvent | RepoEvent] = []
        new: set[str] = set()  # first seen in this batch: tracked only once the append commits
        synced: set[str] = set()
        decoded = [(raw, f) for raw in frames if (f := self._decode(raw, self.tracked)) is not None]
        await self._prefetch({f.did for _, f in decoded if isinstance(f, JetstreamCommit)
                              and f.did not in self.tracked and f.cid_error is None})
        last_time: str | None = None
        for raw, frame in decoded:
            if isinstance(frame, Skipped) and frame.did in new:
                # first tracked earlier in this batch: its profile event is now in scope
                again = self._decode(raw, new)
                if again is None:
                    continue
                frame = again
            seq = getattr(frame, "seq", None)
            if isinstance(seq, int) and (out.last_seq is None or seq > out.last_seq):
                out.last_seq = seq
            metrics.FRAMES.labels(self.source, type(frame).__name__).inc()
            did = getattr(frame, "did", None)
            known = did in self.tracked or did in new
            if isinstance(frame, JetstreamCommit):
                last_time = frame.time
                if self._record(frame, events) and not known:
                    new.add(frame.did)
                    events.insert(len(events) - 1, await self._identity(frame.did, None, frame.seq, force=False))
            elif isinstance(frame, IdentityFrame) and known:
                events.append(await self._identity(frame.did, frame.handle, frame.seq))
            elif isinstance(frame, AccountFrame) and known:
                payload = {"active": frame.active, "status": frame.status}
                events.append(RepoEvent(frame.did, "account", payload, self.source, frame.seq))
            elif isinstance(frame, JetstreamSync) and known:
                # No CAR to verify here; logged so a resync can pick the repo up.
                events.append(RepoEvent(frame.did, "sync", {"unverified": True}, self.source, frame.seq, frame.rev))
                synced.add(frame.did)
            elif isinstance(frame, InfoFrame):
                log.warning("jetstream.info", source=self.source, name=frame.name, message=frame.message)
            elif isinstance(frame, ErrorFrame):
                log.error("jetstream.error_frame", source=self.source, error=frame.error, message=frame.message)
                out.errors.append(frame)
        if events or out.last_seq is not None:
            cursor = (self.source, out.last_seq) if out.last_seq is not None else None
            result = await append_batch(self.conn, events, cursor=cursor)
            out.appended = note_append(self.source, result, out.last_seq, last_time)
        self.tracked.update(new)
        if self.gate is not None:
            for did in synced:  # after the marker is committed, as the firehose path does
                self.gate.enroll(did, "#sync (jetstream)")
        return out

    def _decode(self, raw: bytes | str, tracked: Container[str]) -> JetstreamFrame | None:
        try:
            return decode(raw, self.version, tracked)
        except JetstreamError as e:
            metrics.FRAME_ERRORS.labels(self.source).inc()
            log.warning("ingest.bad_frame", source=self.source, reason=str(e), size=len(raw))
            return None

    async def _prefetch(self, dids: set[str]) -> None:
        if len(dids) > 1:
            await asyncio.gather(*(self.resolver.resolve(d) for d in dids), return_exceptions=True)

    async def _identity(self, did: str, handle: str | None, seq: int, force: bool = True) -> RepoEvent:
        try:
            payload = identity_payload(await self.resolver.resolve(did, force=force), handle)
        except ResolveError as e:
            payload = {"handle": handle, "error": str(e)}
        return RepoEvent(did, "identity", payload, self.source, seq)

    def _record(self, c: JetstreamCommit, events: list[RecordEvent | RepoEvent]) -> bool:
        """Append the op's log row; True when it counts as in-scope history of the repo."""
        op = c.op
        path = f"{op.collection}/{op.rkey}"
        # Lexicon check first, whatever else is wrong: an unstorable body must never reach the append.
        lexicon = self.validator.check(op.collection, op.rkey, op.record) if op.action != "delete" else None
        record = None if lexicon in UNSTORABLE else op.record
        if c.cid_error is not None:
            # Not the record the event names: logged as a `forged` marker (as the firehose does for ops
            # the signed MST does not back), not as a record row, so that it can never take the dedup
            # key of the genuine write when that arrives.
            metrics.REJECTED.labels("cid_mismatch").inc()
            log.warning("ingest.rejected", source=self.source, did=c.did, path=path, rev=c.rev, reason=c.cid_error)
            payload = {"reason": c.cid_error, "path": path, "cid": op.cid, "record": record}
            events.append(RepoEvent(c.did, "forged", payload, self.source, c.seq, c.rev))
            return False
        rejected = lexicon
        if tid_micros(c.rev) is None or too_far_in_future(c.rev):
            # A bogus rev would freeze the record's rev guard for every later genuine write.
            rejected = BAD_REV
            metrics.REJECTED.labels("bad_rev").inc()
            log.warning("ingest.rejected", source=self.source, did=c.did, path=path, rev=c.rev, reason=rejected)
        elif lexicon is not None:
            metrics.REJECTED.labels(op.collection).inc()
            log.info("ingest.rejected", source=self.source, did=c.did, path=path, reason=lexicon)
        events.append(RecordEvent(c.did, op.collection, op.rkey, c.rev, op.action, op.cid, record,
                                  self.source, c.seq, False, rejected))
        return rejected != BAD_REV
