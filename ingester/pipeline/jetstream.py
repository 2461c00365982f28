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
from collections.abc import Sequence

import psycopg
import structlog

from core.events import AccountFrame, ErrorFrame, IdentityFrame, InfoFrame, RecordEvent, RepoEvent, Skipped
from core.identity import IdentityResolver, ResolveError
from ingester import metrics
from ingester.decode.jetstream import JetstreamCommit, JetstreamError, JetstreamFrame, JetstreamSync, Version
from ingester.decode.jetstream import decode_jetstream as decode
from ingester.eventlog.append import append_batch, record_rejects
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.ingest import ActiveHook, BatchOutcome, GapHook, identity_payload, merge_outcomes, note_append
from ingester.pipeline.isolation import bisect
from ingester.pipeline.seqs import admit, replayed, settle, socket_rejects
from ingester.sources.envelope import Reject, SeqCheck, SeqGuard, Verdict
from ingester.sources.jetstream import jetstream_guard
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
        guard: SeqGuard | None = None,
    ) -> None:
        self.conn = conn
        self.source = source
        self.guard = guard if guard is not None else jetstream_guard(source, version, None)
        self.version = version
        self.resolver = resolver
        self.validator = validator
        self.tracked: set[str] = set() if tracked is None else tracked
        self.gate = gate  # a `#sync` enrols the repo for a verified getRepo resync
        self.on_gap: GapHook | None = None
        self.on_active: ActiveHook | None = None

    async def load_tracked(self) -> None:
        async with self.conn.cursor() as cur:
            await cur.execute(_TRACKED)
            self.tracked.update(r[0] for r in await cur.fetchall())
        await self.conn.commit()

    async def handle(self, frames: Sequence[bytes | str]) -> BatchOutcome:
        # A batch that cannot commit is bisected down to its poison frame (`ingester.pipeline.isolation`).
        return await bisect(frames, self._handle, self._set_aside, merge_outcomes, source=self.source)

    async def _handle(self, frames: Sequence[bytes | str]) -> BatchOutcome:
        out = BatchOutcome()
        events: list[RecordEvent | RepoEvent] = []
        new: set[str] = set()  # first seen in this batch: tracked only once the append commits
        synced: set[str] = set()
        check, rejects = self.guard.begin(), list[Reject]()
        taken, skipped_to = len(self.guard.rejects), socket_rejects(self.guard, rejects)
        decoded = [(raw, f) for raw in frames if (f := self._decode(raw, check, rejects)) is not None]
        await self._prefetch({f.did for _, f in decoded if isinstance(f, JetstreamCommit)
                              and f.did not in self.tracked and f.cid_error is None})
        last_time: str | None = None
        for raw, frame in decoded:
            if isinstance(frame, Skipped) and frame.did in new:
                # first tracked earlier in this batch: its profile event is now in scope (its seq was admitted
                # by the first decode, so this one goes straight to the decoder)
                try:
                    frame = decode(raw, self.version, new)
                except JetstreamError:
                    continue
            metrics.FRAMES.labels(self.source, type(frame).__name__).inc()
            did = getattr(frame, "did", None)
            known = did in self.tracked or did in new
            if isinstance(frame, AccountFrame) and frame.active and self.on_active is not None:
                self.on_active(frame.did)
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
                if frame.name == "OutdatedCursor" and self.on_gap is not None:
                    await self.on_gap(self.source, f"OutdatedCursor: {frame.message or ''}")
            elif isinstance(frame, ErrorFrame):
                log.error("jetstream.error_frame", source=self.source, error=frame.error, message=frame.message)
                out.errors.append(frame)
        out.last_seq = check.cursor if check.cursor is not None else skipped_to
        if events or out.last_seq is not None or rejects:
            cursor = (self.source, out.last_seq) if out.last_seq is not None else None
            result = await append_batch(self.conn, events, cursor=cursor, rejects=rejects)
            out.appended = note_append(self.source, result, out.last_seq, last_time)
        settle(self.guard, check, rejects, taken)
        self.tracked.update(new)
        if self.gate is not None:
            for did in synced:  # after the marker is committed, as the firehose path does
                self.gate.enroll(did, "#sync (jetstream)")
        return out

    def _decode(self, raw: bytes | str, check: SeqCheck, rejects: list[Reject]) -> JetstreamFrame | None:
        """The frame, or None when it is set aside (into `rejects`) or a duplicate."""
        try:
            frame = decode(raw, self.version, self.tracked)
        except JetstreamError as e:
            metrics.FRAME_ERRORS.labels(self.source).inc()
            log.warning("ingest.bad_frame", source=self.source, reason=str(e)[:500], size=len(raw), seq=e.seq)
            # A broken frame's seq is as broken as the rest: it never moves the cursor (the next sound frame
            # does). It only spares us recording a replayed reject twice.
            if not replayed(check, e.seq):
                rejects.append(Reject.of(self.source, raw, "decode", str(e), seq=e.seq))
            return None
        seq = getattr(frame, "seq", None)
        if type(seq) is int and admit(self.guard, check, seq) is Verdict.DUPLICATE:
            return None
        return frame

    async def _set_aside(self, raw: bytes | str, error: Exception) -> BatchOutcome:
        """`raw` alone made its batch fail to commit: keep it as a reject and move the cursor past it."""
        check = self.guard.begin()
        try:
            seq = getattr(decode(raw, self.version), "seq", None)
        except JetstreamError as e:
            seq = e.seq
        if type(seq) is int and admit(self.guard, check, seq) is Verdict.DUPLICATE:
            seq = None
        reject = Reject.of(self.source, raw, "poison", f"{type(error).__name__}: {error}", seq=seq)
        out = BatchOutcome(last_seq=check.cursor)
        await record_rejects(self.conn, [reject], (self.source, out.last_seq) if out.last_seq is not None else None)
        settle(self.guard, check, [reject], 0)
        return out

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
