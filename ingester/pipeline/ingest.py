"""Frames → verified, validated log rows → one append per batch (stages ②–④ wired in order).

Per-repo order is the stream's order: a source's frames are handled sequentially, and a repo's
chain state (rev, data CID) lives in memory, loaded from `repo_state` on first sight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog

from core.events import (
    AccountFrame,
    Commit,
    ErrorFrame,
    Frame,
    IdentityFrame,
    InfoFrame,
    RecordEvent,
    RepoEvent,
    Skipped,
    SyncFrame,
)
from core.handles import HandleResolver
from core.identity import DidInfo, IdentityResolver, ResolveError
from ingester import metrics
from ingester.decode.frames import FrameError, decode_frame
from ingester.eventlog.append import AppendResult, RepoState, append_batch, record_rejects
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.isolation import bisect
from ingester.sources.envelope import Reject, SeqCheck, SeqGuard, Verdict
from ingester.validate.records import UNSTORABLE, RecordValidator
from ingester.verify.chain import ChainState, advance, tid_micros, too_far_in_future
from ingester.verify.signature import SignatureVerifier, VerdictKind

log = structlog.get_logger(__name__)

# (source, what the host said): events were lost to the stream; called before anything past it is committed.
GapHook = Callable[[str, str], Awaitable[object]]
ActiveHook = Callable[[str], None]  # an `#account` event says this DID is active (tracked or not)


@dataclass
class BatchOutcome:
    errors: list[ErrorFrame] = field(default_factory=list)
    last_seq: int | None = None
    appended: int = 0


def merge_outcomes(first: BatchOutcome, then: BatchOutcome) -> BatchOutcome:
    """Two consecutive pieces of one batch (bisection): the later piece's cursor wins."""
    return BatchOutcome(first.errors + then.errors, then.last_seq if then.last_seq is not None else first.last_seq,
                        first.appended + then.appended)


def admit(guard: SeqGuard, check: SeqCheck, seq: int) -> Verdict:
    """Judge a frame's seq for the batch being built; duplicates are counted here (dropped by the caller)."""
    verdict = check.admit(seq, guard.max_jump)
    if verdict is Verdict.DUPLICATE:
        metrics.DUPLICATE_FRAMES.labels(guard.source).inc()
    return verdict


def replayed(check: SeqCheck, seq: int | None) -> bool:
    """A seq at or below the last accepted one: something we were sent before."""
    return seq is not None and check.last is not None and seq <= check.last


def socket_rejects(guard: SeqGuard, rejects: list[Reject]) -> int | None:
    """Move the rejects found below the pipeline (too-big messages) into this batch's; the cursor the
    source skipped to, if any. They leave the guard only once the batch commits (`settle`)."""
    rejects.extend(r for r, _ in guard.rejects)
    cursors = [c for _, c in guard.rejects if c is not None]
    return max(cursors) if cursors else None


def settle(guard: SeqGuard, check: SeqCheck, rejects: Sequence[Reject], taken: int) -> None:
    """The batch committed: keep the guard's new state, count the rejects."""
    guard.commit(check)
    del guard.rejects[:taken]
    for r in rejects:
        metrics.REJECTS.labels(r.kind).inc()


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


def identity_payload(info: DidInfo, handle: str | None = None) -> dict[str, Any]:
    return {
        "handle": handle or info.handle,
        "doc_handle": info.handle,
        "pds": info.pds,
        "signing_key": info.signing_key.did_key if info.signing_key else None,
    }


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
        payload = {"handle": handle, "error": str(e)}
    return RepoEvent(did, "identity", payload, source, seq)


class _Tracked:
    """Repos known before this batch plus those first seen in it (for decode's scope check)."""

    def __init__(self, *layers: dict[str, ChainState]) -> None:
        self.layers = layers

    def __contains__(self, did: object) -> bool:
        return any(did in layer for layer in self.layers)


class Ingest:
    def __init__(
        self,
        conn: psycopg.AsyncConnection,
        *,
        source: str,
        resolver: IdentityResolver,
        verifier: SignatureVerifier,
        validator: RecordValidator,
        repos: dict[str, ChainState] | None = None,
        gate: ResyncGate | None = None,
        handles: HandleResolver | None = None,
        guard: SeqGuard | None = None,
    ) -> None:
        self.conn = conn
        self.source = source
        # The source's seq discipline (duplicates, jumps, resets); shared with the source when wired.
        self.guard = guard if guard is not None else SeqGuard(source, None)
        self.resolver = resolver
        self.verifier = verifier
        self.validator = validator
        # Shared by every source of the process: one chain state per repo, whichever host sent it.
        self.repos: dict[str, ChainState] = {} if repos is None else repos
        # Shared with the resync worker: repos being resynced have their commits held, not appended.
        self.gate = gate
        self.handles = handles
        self.on_gap: GapHook | None = None
        self.on_active: ActiveHook | None = None

    async def load_tracked(self) -> None:
        """Repos with in-scope history: their every commit is verified to keep the chain."""
        async with self.conn.cursor() as cur:
            await cur.execute("SELECT did, rev, data_cid, sync_status, desync_reason FROM repo_state")
            for did, rev, data, status, reason in await cur.fetchall():
                self.repos[did] = ChainState(rev, data, status, reason)
        await self.conn.commit()

    async def handle(self, frames: Sequence[bytes]) -> BatchOutcome:
        async with self.gate.lock if self.gate is not None else contextlib.nullcontext():
            # A batch that cannot commit is bisected down to its poison frame (`ingester.pipeline.isolation`).
            out = await bisect(frames, self._handle, self._set_aside, merge_outcomes, source=self.source)
        return out

    async def _handle(self, frames: Sequence[bytes]) -> BatchOutcome:
        out = BatchOutcome()
        events: list[RecordEvent | RepoEvent] = []
        # Chain states change only in `touched` until the append commits, so a failed batch can
        # be retried from scratch without its commits looking like replays.
        touched: dict[str, ChainState] = {}
        tracked = _Tracked(touched, self.repos)
        last_time: str | None = None
        check, rejects = self.guard.begin(), list[Reject]()
        taken, skipped_to = len(self.guard.rejects), socket_rejects(self.guard, rejects)
        decoded = [(raw, frame) for raw in frames if (frame := self._decode(raw, tracked, check, rejects)) is not None]
        # Resolve the batch's new repos concurrently: one slow PLC lookup must not serialise them all.
        await self._prefetch({f.did for _, f in decoded if isinstance(f, Commit) and f.did not in self.repos})
        for raw, frame in decoded:
            if isinstance(frame, Skipped) and frame.did in touched:
                # first tracked earlier in this batch: its other commits are needed for the chain
                if (frame := self._decode(raw, tracked, None, rejects)) is None:
                    continue
            metrics.FRAMES.labels(self.source, type(frame).__name__).inc()
            if isinstance(frame, AccountFrame) and frame.active and self.on_active is not None:
                self.on_active(frame.did)
            if isinstance(frame, Commit):
                last_time = frame.time
                await self._commit(frame, events, touched)
            elif isinstance(frame, IdentityFrame) and frame.did in tracked:
                events.append(await self._identity_event(frame.did, frame.handle, frame.seq))
            elif isinstance(frame, AccountFrame) and frame.did in tracked:
                payload = {"active": frame.active, "status": frame.status}
                events.append(RepoEvent(frame.did, "account", payload, self.source, frame.seq))
            elif isinstance(frame, SyncFrame) and frame.did in tracked:
                await self._sync(frame, events, touched)
            elif isinstance(frame, InfoFrame):
                log.warning("ingest.info", source=self.source, name=frame.name, message=frame.message)
                if frame.name == "OutdatedCursor" and self.on_gap is not None:
                    await self.on_gap(self.source, f"OutdatedCursor: {frame.message or ''}")
            elif isinstance(frame, ErrorFrame):
                log.error("ingest.error_frame", source=self.source, error=frame.error, message=frame.message)
                out.errors.append(frame)
        out.last_seq = check.cursor if check.cursor is not None else skipped_to
        if events or out.last_seq is not None or rejects:
            states = [RepoState(d, s.rev, s.data_cid, s.sync_status, s.reason) for d, s in touched.items()]
            cursor = (self.source, out.last_seq) if out.last_seq is not None else None
            result = await append_batch(self.conn, events, cursor=cursor, repo_states=states, rejects=rejects)
            out.appended = note_append(self.source, result, out.last_seq, last_time)
        settle(self.guard, check, rejects, taken)
        if self.gate is not None:
            for did, s in touched.items():
                before = self.repos.get(did)
                if s.sync_status != "synchronized" and (before is None or before.sync_status == "synchronized"):
                    self.gate.enroll(did, s.reason or "desynchronized")
        self.repos.update(touched)
        return out

    def _decode(self, raw: bytes, tracked: _Tracked, check: SeqCheck | None, rejects: list[Reject]) -> Frame | None:
        """The frame, or None when it is set aside (into `rejects`) or a duplicate. `check`: judge its seq
        (None when the frame was judged already, on a second decode)."""
        try:
            frame = decode_frame(raw, tracked)
        except FrameError as e:
            metrics.FRAME_ERRORS.labels(self.source).inc()
            log.warning("ingest.bad_frame", source=self.source, reason=str(e)[:500], size=len(raw), seq=e.seq)
            # A broken frame's seq is as broken as the rest: it never moves the cursor (the next sound frame
            # does). It only spares us recording a replayed reject twice.
            if check is None or not replayed(check, e.seq):
                rejects.append(Reject.of(self.source, raw, "decode", str(e), seq=e.seq))
            return None
        seq = getattr(frame, "seq", None)
        if check is not None and type(seq) is int and admit(self.guard, check, seq) is Verdict.DUPLICATE:
            return None
        return frame

    async def _set_aside(self, raw: bytes, error: Exception) -> BatchOutcome:
        """`raw` alone made its batch fail to commit: keep it as a reject and move the cursor past it."""
        check = self.guard.begin()
        try:
            seq = getattr(decode_frame(raw), "seq", None)
        except FrameError as e:
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
            await asyncio.gather(*(self._warm(d) for d in dids), return_exceptions=True)

    async def _warm(self, did: str) -> None:
        info = await self.resolver.resolve(did)
        if self.handles is not None:  # a handle check is a DNS + HTTPS round trip: not one after another
            await self.handles.verified_handle(info)

    async def _identity_event(self, did: str, handle: str | None, seq: int | None,
                              force: bool = True) -> RepoEvent:
        return await identity_event(self.resolver, self.handles, did, handle, self.source, seq, force=force)

    async def _verified(self, did: str, signed: bytes, sig: bytes, rev: str, seq: int,
                        events: list[RecordEvent | RepoEvent]) -> bool | None:
        """True verified, False unverifiable (DID unresolved), None forged (events gets a marker)."""
        verdict = await self.verifier.verify(did, signed, sig)
        if verdict.kind is VerdictKind.BAD_SIGNATURE:
            metrics.FORGED.inc()
            log.warning("ingest.forged_commit", did=did, rev=rev, source=self.source)
            events.append(RepoEvent(did, "forged", {"reason": "bad signature"}, self.source, seq, rev))
            return None
        if not verdict.ok:
            metrics.UNVERIFIED.inc()
            log.warning("ingest.unverified_commit", did=did, rev=rev, reason=verdict.reason)
        return verdict.ok

    async def _commit(self, c: Commit, events: list[RecordEvent | RepoEvent],
                      touched: dict[str, ChainState]) -> None:
        state = touched.get(c.did) or self.repos.get(c.did)
        if state is not None and c.rev <= state.rev:
            metrics.DUPLICATES.inc()  # replayed or re-delivered commit
            return
        if tid_micros(c.rev) is None or too_far_in_future(c.rev):
            # A bogus rev would freeze the repo's rev guard for every later genuine commit.
            log.warning("ingest.bad_rev", did=c.did, rev=c.rev)
            metrics.REJECTED.labels("bad_rev").inc()
            return
        verified = await self._verified(c.did, c.signed_bytes, c.sig, c.rev, c.seq, events)
        if verified is None:
            return
        if c.proof_error is not None:
            # ops (unsigned) the signed MST does not back: injected or altered upstream, whoever signed
            metrics.FORGED.inc()
            log.warning("ingest.forged_commit", did=c.did, rev=c.rev, source=self.source, reason=c.proof_error)
            events.append(RepoEvent(c.did, "forged", {"reason": c.proof_error}, self.source, c.seq, c.rev))
            return
        if not verified:
            # Unverifiable (DID unresolved): log the records for a later decision, but never let
            # them move the repo's chain, or an unverified rev could shadow genuine commits.
            self._append_ops(c, events, verified=False)
            return
        if self.gate is not None and self.gate.hold(c.did, self.source, c):
            # Being resynced: the chain check waits for the snapshot (replay). The ops are logged now unless
            # the gate buffers them: the rev guard makes either order converge.
            if not self.gate.buffer_live:
                self._append_ops(c, events, verified=True)
            return
        if state is None:
            events.append(await self._identity_event(c.did, None, c.seq, force=False))
        new = advance(state, c.rev, c.since, c.prev_data, c.data_cid)
        if state is not None and state.sync_status == "synchronized" and new.sync_status != "synchronized":
            metrics.DESYNC.labels("chain").inc()
            events.append(RepoEvent(c.did, "desync", {"reason": new.reason}, self.source, c.seq, c.rev))
        self._append_ops(c, events, verified=True)
        touched[c.did] = new

    def _append_ops(self, c: Commit, events: list[RecordEvent | RepoEvent], *, verified: bool) -> None:
        events.extend(commit_events(c, self.source, self.validator, verified=verified))

    async def _sync(self, f: SyncFrame, events: list[RecordEvent | RepoEvent],
                    touched: dict[str, ChainState]) -> None:
        state = touched.get(f.did) or self.repos[f.did]
        if f.rev <= state.rev:
            return
        if await self._verified(f.did, f.signed_bytes, f.sig, f.rev, f.seq, events) is None:
            return
        if self.gate is not None and self.gate.hold(f.did, self.source, f):
            return
        if f.data_cid is not None and f.data_cid == state.data_cid:
            new = ChainState(f.rev, f.data_cid, state.sync_status, state.reason)
        else:
            new = ChainState(f.rev, f.data_cid, "desynchronized", "#sync: repo state reset upstream")
            metrics.DESYNC.labels("sync").inc()
            events.append(RepoEvent(f.did, "sync", {"data_cid": f.data_cid}, self.source, f.seq, f.rev))
        touched[f.did] = new
