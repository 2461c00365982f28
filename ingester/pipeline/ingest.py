"""Frames → verified, validated log rows → one append per batch (stages ②–④ wired in order).

Per-repo order is the stream's order, and repos do not wait for each other (indigo's parallel scheduler,
atproto's MemoryRunner): a batch never waits on the network. A frame whose DID needs an identity resolution
that is not at hand (DID document, verified handle, a forced refresh) is parked with every later frame of
that DID (`parking.py`) while the resolution runs in the background under a total deadline
(`resolution.py`); the DID's frames are processed, in order, in a later batch — the next one from the
source, or a flush that `run_parked` starts as soon as a resolution is done. The committed source cursor
never passes the lowest parked seq, so a crash replays them (the dedup key and rev check absorb the rest).

Authority (`ingester.verify.authority`): from a directly followed PDS, `#account`, `#identity` and `#sync`
count only for DIDs whose document names that PDS; a relay is trusted as a relay. A `#sync` moves a repo's
rev only when its signature verifies, and no rev further ahead than `rev_skew_s` is ever accepted.
A repo's chain state (rev, data CID) lives in memory, loaded from `repo_state` on first sight.

Isolation (`isolation.py`, `seqs.py`): seqs are judged, bad frames become rejects, a failing batch is bisected.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

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
from core.retry import Backoff
from ingester import metrics
from ingester.decode.frames import FrameError, decode_frame
from ingester.eventlog.append import RepoState, append_batch, record_rejects
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.isolation import bisect
from ingester.pipeline.lookups import IdentityLookups, Park, error_payload, identity_payload
from ingester.pipeline.parking import Item, ParkingLot
from ingester.pipeline.resolution import Resolutions
from ingester.pipeline.rows import commit_events, identity_event, note_append
from ingester.pipeline.seqs import admit, replayed, settle, socket_rejects
from ingester.sources.envelope import Reject, SeqCheck, SeqGuard, Verdict
from ingester.validate.records import RecordValidator
from ingester.verify.authority import Upstream, hosted_by
from ingester.verify.chain import DEFAULT_FUTURE_SKEW_S, ChainState, advance, rev_error
from ingester.verify.signature import SignatureVerifier, VerdictKind

log = structlog.get_logger(__name__)

# `identity_payload` and `error_payload` live in `lookups` and are re-exported for the other pipelines.
__all__ = ["ActiveHook", "BatchOutcome", "GapHook", "Ingest", "commit_events", "error_payload", "identity_event",
           "identity_payload", "merge_outcomes", "note_append"]

# (source, what the host said): events were lost to the stream; called before anything past it is committed.
GapHook = Callable[[str, str], Awaitable[object]]
ActiveHook = Callable[[str], None]  # an `#account` event says this DID is active (tracked or not)


@dataclass
class BatchOutcome:
    errors: list[ErrorFrame] = field(default_factory=list)
    last_seq: int | None = None  # the source cursor committed with the batch (below any parked frame)
    appended: int = 0
    parked: int = 0  # frames left waiting for their DID's identity after this batch

    def merge(self, other: BatchOutcome) -> BatchOutcome:
        last = other.last_seq if other.last_seq is not None else self.last_seq
        return BatchOutcome([*self.errors, *other.errors], last, self.appended + other.appended, other.parked)


merge_outcomes = BatchOutcome.merge  # two consecutive pieces of one batch (bisection): the later cursor wins


class _Tracked:
    """Repos known before this batch, those first seen in it and those parked (for decode's scope check:
    a parked repo's later commits carry its chain, so they are decoded and parked too)."""

    def __init__(self, *layers: dict[str, ChainState] | ParkingLot) -> None:
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
        upstream: Upstream | None = None,
        resolutions: Resolutions | None = None,
        parking: ParkingLot | None = None,
        rev_skew_s: float = DEFAULT_FUTURE_SKEW_S,
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
        # Who we follow. The service always says; without it the upstream is trusted as a relay.
        self.upstream = upstream or Upstream.trusted_relay()
        self._own_resolutions = resolutions is None
        self.resolutions = resolutions if resolutions is not None else Resolutions(resolver, handles)
        self.parking = parking if parking is not None else ParkingLot()
        self.lookups = IdentityLookups(resolver, handles, self.resolutions)
        self.rev_skew_s = rev_skew_s
        self._serial = asyncio.Lock()  # the source's batches and `run_parked`'s flushes, one at a time
        self._wake = asyncio.Event()
        self._committed: int | None = None  # cursor committed by this instance
        self._first: int | None = None  # seq of the first frame this instance received

    async def load_tracked(self) -> None:
        """Repos with in-scope history: their every commit is verified to keep the chain."""
        async with self.conn.cursor() as cur:
            await cur.execute("SELECT did, rev, data_cid, sync_status, desync_reason FROM repo_state")
            for did, rev, data, status, reason in await cur.fetchall():
                self.repos[did] = ChainState(rev, data, status, reason)
        await self.conn.commit()

    async def handle(self, frames: Sequence[bytes]) -> BatchOutcome:
        async with self._serial, self.gate.lock if self.gate is not None else contextlib.nullcontext():
            # Parked frames whose resolution is done go first (each repo's in order), then the new frames; a batch
            # that cannot commit is bisected down to its poison frame, parked or new (`ingester.pipeline.isolation`).
            saved = self.parking.checkpoint()
            units: list[Item | bytes] = [*self.parking.take_ready(), *frames]
            try:
                out = await bisect(units, self._attempt, self._set_aside, merge_outcomes, source=self.source)
            except BaseException:
                self.parking.restore(saved)  # the source retries the batch: park nothing twice, lose nothing
                raise
        metrics.PARKED.labels(self.source).set(out.parked)
        # A batch whose frames are all parked does no I/O: without a turn here, a source whose queue is full
        # would starve the very resolutions its repos wait for.
        await asyncio.sleep(0)
        return out

    async def drain(self) -> BatchOutcome:
        """Wait for every parked repo's resolution and process its frames (tests, benchmarks, one-shot runs;
        the service has `run_parked` do it as resolutions finish)."""
        out = BatchOutcome()
        while len(self.parking):
            await asyncio.gather(*self.parking.waits(), return_exceptions=True)
            out = out.merge(await self.handle([]))
        return out

    async def run_parked(self, flush: Callable[[], Awaitable[object]], stop: asyncio.Event) -> None:
        """Process parked frames as soon as their resolution is done, even when the source is quiet.

        `flush` runs one empty batch (`handle([])`, through the service's handler, which reconnects).
        """
        backoff = Backoff()
        while not stop.is_set():
            woken = asyncio.create_task(self._wake.wait())
            stopped = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({woken, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
                stopped.cancel()
            self._wake.clear()
            if stop.is_set() or not self.parking.ready():
                continue
            try:
                await flush()
                backoff.reset()
            except Exception:
                log.exception("ingest.flush_failed", source=self.source)
                self._wake.set()
                await backoff.wait(stop)

    async def aclose(self) -> None:
        if self._own_resolutions:
            await self.resolutions.aclose()

    async def _attempt(self, units: Sequence[Item | bytes]) -> BatchOutcome:
        saved = self.parking.checkpoint()
        try:
            return await self._handle(units)
        except BaseException:
            self.parking.restore(saved)  # the batch (or a piece of it) is tried again: park nothing twice
            raise

    async def _handle(self, units: Sequence[Item | bytes]) -> BatchOutcome:
        out = BatchOutcome()
        events: list[RecordEvent | RepoEvent] = []
        # Chain states change only in `touched` until the append commits, so a failed batch can
        # be retried from scratch without its commits looking like replays.
        touched: dict[str, ChainState] = {}
        enrol: dict[str, str] = {}
        tracked = _Tracked(touched, self.repos, self.parking)
        last_time: str | None = None
        check, rejects = self.guard.begin(), list[Reject]()
        taken, skipped_to = len(self.guard.rejects), socket_rejects(self.guard, rejects)
        fresh = False  # a frame with a seq arrived in this batch
        now = self.resolutions.now()
        work: list[Item] = []
        for raw in units:
            if isinstance(raw, Item):  # parked earlier, its resolution done: decoded and judged already
                work.append(raw)
                continue
            if (frame := self._decode(raw, tracked, check, rejects)) is None:
                continue
            item = Item(frame, len(raw), now, raw)
            seq = item.seq
            if seq is not None:
                fresh = True
                if self._first is None:
                    self._first = seq
            metrics.FRAMES.labels(self.source, type(frame).__name__).inc()
            work.append(item)
        for item in work:
            frame = item.frame
            if isinstance(frame, Skipped) and item.raw is not None and (frame.did in touched
                                                                        or frame.did in self.parking):
                # first tracked (or parked) earlier in this batch: its other commits are needed for the chain
                if (decoded := self._decode(item.raw, tracked, None, rejects)) is None:
                    continue
                item.frame = frame = decoded
            did = getattr(frame, "did", None)
            if isinstance(frame, AccountFrame) and frame.active and self.on_active is not None:
                self.on_active(frame.did)
            if isinstance(did, str) and did in self.parking:
                self._park(did, item, None, enrol)  # behind the repo's earlier frames
                continue
            try:
                if isinstance(frame, Commit):
                    last_time = frame.time
                    self._commit(frame, item, events, touched, enrol)
                elif isinstance(frame, IdentityFrame) and frame.did in tracked:
                    self._identity(frame, item, events)
                elif isinstance(frame, AccountFrame) and frame.did in tracked:
                    if self._authorised(frame.did, item, "account"):
                        payload = {"active": frame.active, "status": frame.status}
                        events.append(RepoEvent(frame.did, "account", payload, self.source, frame.seq))
                elif isinstance(frame, SyncFrame) and frame.did in tracked:
                    self._sync(frame, item, events, touched)
                elif isinstance(frame, InfoFrame):
                    log.warning("ingest.info", source=self.source, name=frame.name, message=frame.message)
                    if frame.name == "OutdatedCursor" and self.on_gap is not None:
                        await self.on_gap(self.source, f"OutdatedCursor: {frame.message or ''}")
                elif isinstance(frame, ErrorFrame):
                    log.error("ingest.error_frame", source=self.source, error=frame.error, message=frame.message)
                    out.errors.append(frame)
            except Park as p:
                assert isinstance(did, str)
                self._park(did, item, p.force, enrol)
        # The highest sound seq (never an unconfirmed outlier), or where the source skipped a too-big frame to.
        received = max((x for x in (check.last, skipped_to) if x is not None), default=None)
        cursor = self._cursor(received, reset=any(kind == "reset" for kind, _ in check.anomalies))
        moved = cursor is not None and cursor != self._committed
        # A moved chain state is written even alone (a #sync beside a parked frame): no later batch would carry it.
        if events or moved or rejects or touched:
            states = [RepoState(d, s.rev, s.data_cid, s.sync_status, s.reason) for d, s in touched.items()]
            result = await append_batch(self.conn, events, repo_states=states, rejects=rejects,
                                        cursor=(self.source, cursor) if moved and cursor is not None else None)
            out.appended = note_append(self.source, result, cursor, last_time)
        settle(self.guard, check, rejects, taken)
        if moved or fresh:
            out.last_seq = cursor
        self._committed = cursor
        out.parked = len(self.parking)
        for did, s in touched.items():
            before = self.repos.get(did)
            if s.sync_status != "synchronized" and (before is None or before.sync_status == "synchronized"):
                enrol.setdefault(did, s.reason or "desynchronized")
        self.repos.update(touched)
        if self.gate is not None:
            for did, reason in enrol.items():
                self.gate.enroll(did, reason)
        return out

    def _cursor(self, received: int | None, *, reset: bool = False) -> int | None:
        """The cursor to commit: every frame up to it is handled, none parked; never moved backwards, but for
        a host whose seq space restarted (`reset`: the cursor follows it down)."""
        if received is None or self._first is None:
            return self._committed
        low = self.parking.low_seq()
        cursor = received if low is None else min(received, low - 1)
        if reset:
            return cursor
        if cursor < self._first - 1 or (self._committed is not None and cursor < self._committed):
            # Below our first frame is what was committed before us. Just below it is still worth committing:
            # it is where a reconnect must resume (a stream joined at its live tip has no cursor of its own).
            return self._committed
        return cursor

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

    async def _set_aside(self, unit: Item | bytes, error: Exception) -> BatchOutcome:
        """`unit` alone made its batch fail to commit: keep it as a reject and move the cursor past it."""
        check = self.guard.begin()
        seq: int | None
        if isinstance(unit, Item):  # a parked frame: its seq was judged on arrival, its bytes released
            raw, seq = unit.raw or b"", unit.seq
        else:
            raw = unit
            try:
                seq = getattr(decode_frame(raw), "seq", None)
            except FrameError as e:
                seq = e.seq
            if type(seq) is int and admit(self.guard, check, seq) is Verdict.DUPLICATE:
                seq = None
        self._first = seq if self._first is None and type(seq) is int else self._first
        reject = Reject.of(self.source, raw, "poison", f"{type(error).__name__}: {error}", seq=seq,
                           size=unit.size if isinstance(unit, Item) else None)
        cursor = self._cursor(check.last) if check.moved or isinstance(unit, Item) else self._committed
        moved = cursor is not None and cursor != self._committed
        await record_rejects(self.conn, [reject], (self.source, cursor) if moved and cursor is not None else None)
        settle(self.guard, check, [reject], 0)
        self._committed = cursor
        return BatchOutcome(last_seq=cursor if moved else None, parked=len(self.parking))

    # --- parking --------------------------------------------------------------------------------------

    def _park(self, did: str, item: Item, force: bool | None, enrol: dict[str, str]) -> None:
        """Park `item` behind `did`'s parked frames; `force` is not None: it starts the queue and asks
        for the resolution it needs."""
        task = None
        if force is not None:
            task = self.resolutions.request(did, force=force, after=item.arrived)
            task.add_done_callback(lambda _: self._wake.set())
        item.raw = None  # decoded already; the bytes are not needed again
        for victim, n in self.parking.park(did, item, task).items():
            metrics.PARKED_DROPPED.labels(self.source).inc(n)
            log.warning("ingest.parked_dropped", source=self.source, did=victim, frames=n,
                        reason="parking bound reached; the repo is resynced instead")
            enrol[victim] = "parked frames dropped (identity too slow)"

    def _authorised(self, did: str, item: Item, kind: str) -> bool:
        """May our upstream tell us this about `did`? A relay may; a PDS only about the DIDs it hosts."""
        if self.upstream.relay:
            return True
        known, refreshed = self.lookups.doc(did, item)
        if isinstance(known, ResolveError):
            why = f"DID does not resolve: {known.reason}"
        else:
            hosted = hosted_by(self.upstream, known)
            if hosted is None:
                return True
            if not refreshed and self.verifier.may_refresh(did):
                raise Park(True)  # maybe the account just moved here and our copy of its document is stale
            why = hosted
        metrics.UNAUTHORISED.labels(kind, why.split(":")[0]).inc()
        log.warning("ingest.not_authoritative", source=self.source, upstream=self.upstream.origin, did=did,
                    kind=kind, reason=why, doc_pds=known.pds if isinstance(known, DidInfo) else None)
        return False

    # --- frames ---------------------------------------------------------------------------------------

    def _identity(self, f: IdentityFrame, item: Item, events: list[RecordEvent | RepoEvent]) -> None:
        payload = self.lookups.identity_payload(f.did, item, f.handle, force=True)  # #identity: re-resolve
        if self._authorised(f.did, item, "identity"):
            events.append(RepoEvent(f.did, "identity", payload, self.source, f.seq))

    def _chain(self, did: str, touched: dict[str, ChainState]) -> tuple[ChainState | None, str | None]:
        """The repo's chain state, and why it is bogus (a stored rev no commit could have had), if it is."""
        state = touched.get(did) or self.repos.get(did)
        why = rev_error(state.rev, self.rev_skew_s) if state is not None else None
        return state, (f"stored rev {state.rev[:20]!r} is implausible: {why}" if state and why else None)

    def _verdict(self, did: str, item: Item, signed: bytes, sig: bytes) -> VerdictKind:
        known, refreshed = self.lookups.doc(did, item)
        verdict = self.verifier.judge(did, known, signed, sig, refreshed=refreshed)
        if verdict is None:
            raise Park(True)  # fails on a document that may be stale: refresh it (off the hot path) first
        return verdict.kind

    def _forged(self, did: str, rev: str, seq: int, reason: str, events: list[RecordEvent | RepoEvent]) -> None:
        metrics.FORGED.inc()
        log.warning("ingest.forged_commit", did=did, rev=rev, source=self.source, reason=reason)
        events.append(RepoEvent(did, "forged", {"reason": reason}, self.source, seq, rev))

    def _commit(self, c: Commit, item: Item, events: list[RecordEvent | RepoEvent],
                touched: dict[str, ChainState], enrol: dict[str, str]) -> None:
        state, bogus = self._chain(c.did, touched)
        if state is not None and bogus is None and c.rev <= state.rev:
            metrics.DUPLICATES.inc()  # replayed or re-delivered commit
            return
        if (why := rev_error(c.rev, self.rev_skew_s)) is not None:
            # A bogus rev would freeze the repo's rev guard for every later genuine commit.
            log.warning("ingest.bad_rev", did=c.did, rev=c.rev[:40], reason=why, source=self.source)
            metrics.REJECTED.labels("bad_rev").inc()
            return
        kind = self._verdict(c.did, item, c.signed_bytes, c.sig)
        if kind is VerdictKind.BAD_SIGNATURE:
            self._forged(c.did, c.rev, c.seq, "bad signature", events)
            return
        if c.proof_error is not None:
            # ops (unsigned) the signed MST does not back: injected or altered upstream, whoever signed
            self._forged(c.did, c.rev, c.seq, c.proof_error, events)
            return
        if kind is not VerdictKind.OK:
            # Unverifiable (DID unresolved, no key, resolution past its deadline): log the records for a
            # later decision, but never let them move the repo's chain, or an unverified rev could shadow
            # genuine commits.
            metrics.UNVERIFIED.inc()
            log.warning("ingest.unverified_commit", did=c.did, rev=c.rev, reason=kind.value, source=self.source)
            self._append_ops(c, events, verified=False)
            return
        first = None if state is not None else self.lookups.identity_payload(c.did, item, None, force=False)
        if self.gate is not None and self.gate.hold(c.did, self.source, c):
            # Being resynced: the chain check waits for the snapshot (replay). The ops are logged now unless
            # the gate buffers them: the rev guard makes either order converge.
            if not self.gate.buffer_live:
                self._append_ops(c, events, verified=True)
            return
        if first is not None:
            events.append(RepoEvent(c.did, "identity", first, self.source, c.seq))
        if bogus is not None:
            log.warning("ingest.bogus_chain", did=c.did, reason=bogus, source=self.source)
            new = ChainState(c.rev, c.data_cid, "desynchronized", bogus)
            enrol[c.did] = bogus
        else:
            new = advance(state, c.rev, c.since, c.prev_data, c.data_cid)
        if state is not None and state.sync_status == "synchronized" and new.sync_status != "synchronized":
            metrics.DESYNC.labels("chain").inc()
            events.append(RepoEvent(c.did, "desync", {"reason": new.reason}, self.source, c.seq, c.rev))
        self._append_ops(c, events, verified=True)
        touched[c.did] = new

    def _append_ops(self, c: Commit, events: list[RecordEvent | RepoEvent], *, verified: bool) -> None:
        events.extend(commit_events(c, self.source, self.validator, verified=verified))

    def _sync(self, f: SyncFrame, item: Item, events: list[RecordEvent | RepoEvent],
              touched: dict[str, ChainState]) -> None:
        state, bogus = self._chain(f.did, touched)
        assert state is not None  # tracked
        if bogus is None and f.rev <= state.rev:
            return
        if (why := rev_error(f.rev, self.rev_skew_s)) is not None:
            self._refuse_sync(f, why)
            return
        if not self._authorised(f.did, item, "sync"):
            return
        kind = self._verdict(f.did, item, f.signed_bytes, f.sig)
        if kind is VerdictKind.BAD_SIGNATURE:
            self._forged(f.did, f.rev, f.seq, "bad signature", events)
            return
        if kind is not VerdictKind.OK:
            # Only a signed statement may reset a repo: an unverifiable #sync moves nothing.
            self._refuse_sync(f, f"signature cannot be checked: {kind.value}")
            return
        if self.gate is not None and self.gate.hold(f.did, self.source, f):
            return
        if bogus is None and f.data_cid is not None and f.data_cid == state.data_cid:
            new = ChainState(f.rev, f.data_cid, state.sync_status, state.reason)
        else:
            new = ChainState(f.rev, f.data_cid, "desynchronized", bogus or "#sync: repo state reset upstream")
            metrics.DESYNC.labels("sync").inc()
            events.append(RepoEvent(f.did, "sync", {"data_cid": f.data_cid}, self.source, f.seq, f.rev))
        touched[f.did] = new

    def _refuse_sync(self, f: SyncFrame, why: str) -> None:
        metrics.SYNC_REFUSED.labels(why.split(":")[0]).inc()
        log.warning("ingest.sync_refused", did=f.did, rev=f.rev[:40], reason=why, source=self.source)
