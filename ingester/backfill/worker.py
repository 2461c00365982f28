"""Backfill and resync of one repo at a time per worker: getRepo → verify → diff against the log → append.

The same path serves a first backfill (discovery), a repo desynchronized by the chain checks, a `#sync`, and
a repo first seen mid-chain on the live stream. Jobs live in `backfill_job`, so a crash resumes where it
stopped and repos already done are skipped. Every failure is logged, recorded on the job with its reason,
and the other jobs carry on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
import structlog

from core.db.connect import connect
from core.events import RecordEvent, RepoEvent
from core.handles import HandleResolver
from core.identity import IdentityResolver, ResolveError
from ingester import metrics
from ingester.backfill import jobs
from ingester.backfill.diff import Change, diff
from ingester.backfill.replay import replay
from ingester.decode.repo import RepoError, RepoSnapshot, load_repo
from ingester.eventlog.append import RepoState, append_batch
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.ingest import commit_events, error_payload, identity_event
from ingester.sources.repos import FetchError, RepoFetcher
from ingester.validate.records import UNSTORABLE, RecordValidator
from ingester.verify.chain import DEFAULT_FUTURE_SKEW_S, ChainState, rev_error
from ingester.verify.signature import SignatureVerifier, VerdictKind

log = structlog.get_logger(__name__)

SOURCE = "backfill"


class JobFailed(Exception):
    """A repo could not be backfilled; `str()` is the reason recorded on its job."""


@dataclass
class Counters:
    done: int = 0
    failed: int = 0
    changes: int = 0
    records: int = 0
    failures: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    did: str
    ok: bool
    reason: str | None = None
    changes: int = 0
    records: int = 0


class Backfiller:
    def __init__(
        self,
        url: str,
        *,
        resolver: IdentityResolver,
        verifier: SignatureVerifier,
        validator: RecordValidator,
        fetcher: RepoFetcher,
        gate: ResyncGate | None = None,
        handles: HandleResolver | None = None,
        repos: dict[str, ChainState] | None = None,
        concurrency: int = 8,
        rev_skew_s: float = DEFAULT_FUTURE_SKEW_S,
        identity_deadline_s: float = 10.0,
    ) -> None:
        self.url = url
        self.resolver, self.verifier, self.validator = resolver, verifier, validator
        self.fetcher, self.handles = fetcher, handles
        self.gate = gate or ResyncGate()
        self.repos: dict[str, ChainState] = {} if repos is None else repos
        self.concurrency = max(1, concurrency)
        self.rev_skew_s, self.identity_deadline_s = rev_skew_s, identity_deadline_s
        self.counters = Counters()
        self.on_outcome: Callable[[Outcome], None] | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: dict[str, str | None] = {}  # did → reason to record when it starts (None: keep the job's)
        self._running: set[str] = set()
        self._again: dict[str, str | None] = {}  # submitted while running: queued again when it finishes
        self.gate.on_enroll(self.submit)

    # --- queueing -----------------------------------------------------------------------------------

    def submit(self, did: str, reason: str | None = None) -> None:
        """Queue a repo (once: a repo already waiting or running keeps its place)."""
        if did in self._queued or did in self._running:
            return
        self._queued[did] = reason
        self._queue.put_nowait(did)
        metrics.RESYNC_QUEUED.inc()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    @property
    def idle(self) -> bool:
        return not self._queued and not self._running and self._queue.empty()

    async def load(self, conn: psycopg.AsyncConnection, *, retry_failed: bool = True, max_attempts: int = 5) -> int:
        """Queue every unfinished job and every desynchronized repo (after a restart)."""
        for did, reason in await jobs.desynchronized(conn, max_attempts):
            self.submit(did, f"resync: {reason}")
        for did in await jobs.runnable(conn, retry_failed=retry_failed, max_attempts=max_attempts):
            self.submit(did)
        return self._queue.qsize()

    # --- running ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> Counters:
        """Work the queue with `concurrency` workers; until `stop`, or (until_idle) until it is empty."""
        workers = [asyncio.create_task(self._worker(), name=f"backfill:{i}") for i in range(self.concurrency)]
        waiter = asyncio.create_task(self._queue.join() if until_idle else stop.wait())
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (*workers, waiter, stopper):
                t.cancel()
            await asyncio.gather(*workers, waiter, stopper, return_exceptions=True)
        return self.counters

    async def _worker(self) -> None:
        conn: psycopg.AsyncConnection | None = None
        try:
            while True:
                did = await self._queue.get()
                reason = self._queued.pop(did, None)
                if did in self._running:  # one resync per repo at a time
                    self._again[did] = reason
                    self._queue.task_done()
                    continue
                self._running.add(did)
                try:
                    if conn is None or conn.closed or conn.broken:
                        conn = await connect(self.url)
                    outcome = await self.backfill(conn, did, reason)
                except (OSError, psycopg.Error) as e:
                    # The database, not the repo: the job stays as it was, for the next run; this worker lives on.
                    log.warning("backfill.database_error", did=did, error=str(e))
                    outcome = Outcome(did, False, f"database error: {e}")
                    if conn is not None:
                        await conn.close()
                        conn = None
                finally:
                    self._running.discard(did)
                    if did in self._again:
                        self.submit(did, self._again.pop(did))
                    self._queue.task_done()
                if self._queue.empty() and conn is not None:
                    # Idle workers hold no session: BACKFILL_CONCURRENCY connections only while there is work.
                    await conn.close()
                    conn = None
                if self.on_outcome is not None:
                    self.on_outcome(outcome)
        finally:
            if conn is not None:
                await conn.close()

    async def backfill(self, conn: psycopg.AsyncConnection, did: str, reason: str | None = None) -> Outcome:
        """Bring one repo's log up to its current snapshot; never raises for a bad repo."""
        await jobs.started(conn, did, reason)
        pds: str | None = None
        begun = False
        try:
            try:
                # One total deadline: a did:web host dripping bytes must not hold a worker forever.
                async with asyncio.timeout(self.identity_deadline_s):
                    info = await self.resolver.resolve(did)
            except TimeoutError as e:
                raise JobFailed(f"DID does not resolve: timeout ({self.identity_deadline_s:g} s)") from e
            except ResolveError as e:
                raise JobFailed(f"DID does not resolve: {e.reason}" + (f" ({e.detail})" if e.detail else "")) from e
            pds = info.pds
            if pds is None:
                raise JobFailed("DID document names no #atproto_pds service")
            async with self.gate.lock:
                self.gate.begin(did)
                begun = True
            snap = await self._snapshot(pds, did)
            stored = await jobs.stored_state(conn, did)
            changes = diff(stored, {p: r.cid for p, r in snap.records.items()}, snap.rev)
            await self._finish(conn, did, pds, snap, changes)
        except JobFailed as e:
            return await self._failed(conn, did, pds, str(e), begun)
        except asyncio.CancelledError:
            if begun:  # shutting down: hand the held commits back to the log (shielded from the cancel)
                await asyncio.shield(self._release(conn, did))
            raise
        except Exception as e:
            log.exception("backfill.unexpected", did=did)
            return await self._failed(conn, did, pds, f"unexpected: {type(e).__name__}: {e}"[:300], begun)
        self.counters.done += 1
        self.counters.changes += len(changes)
        self.counters.records += len(snap.records)
        metrics.RESYNCS.labels("done").inc()
        log.info("backfill.done", did=did, rev=snap.rev, records=len(snap.records), changes=len(changes))
        return Outcome(did, True, None, len(changes), len(snap.records))

    async def _snapshot(self, pds: str, did: str) -> RepoSnapshot:
        try:
            car = await self.fetcher.get_repo(pds, did)
        except FetchError as e:
            raise JobFailed(f"getRepo: {e.reason}") from e
        try:
            snap = load_repo(car, did)
        except RepoError as e:
            raise JobFailed(f"bad repo: {e}") from e
        if (why := rev_error(snap.rev, self.rev_skew_s)) is not None:
            raise JobFailed(f"bad rev {snap.rev[:40]!r}: {why}")
        verdict = await self.verifier.verify(did, snap.signed_bytes, snap.sig)
        if verdict.kind is VerdictKind.BAD_SIGNATURE:
            metrics.FORGED.inc()
            raise JobFailed("commit signature does not verify (after a DID document refresh)")
        if not verdict.ok:
            detail = f" {verdict.reason}" if verdict.reason else ""
            raise JobFailed(f"cannot verify the commit: {verdict.kind.value}{detail}")
        current = self.repos.get(did)
        if current is not None and current.rev > snap.rev:
            # A verified snapshot older than a plausible chain is stale (a lagging mirror): refused. Older than
            # an implausible one (not a TID, or past the future-skew rule: no commit we accepted can have it),
            # it is the repair: the stored chain is bogus, and the snapshot replaces it.
            if (bogus := rev_error(current.rev, self.rev_skew_s)) is None:
                raise JobFailed(f"snapshot rev {snap.rev} is older than our chain ({current.rev})")
            metrics.RESYNCS.labels("bogus_chain_repaired").inc()
            log.warning("backfill.bogus_chain_repaired", did=did, stored_rev=current.rev[:40], reason=bogus,
                        snapshot_rev=snap.rev)
        return snap

    def _events(self, snap: RepoSnapshot, changes: Iterable[Change]) -> list[RecordEvent]:
        out = []
        for ch in changes:
            collection, _, rkey = ch.path.partition("/")
            if ch.action == "delete":
                out.append(RecordEvent(snap.did, collection, rkey, snap.rev, "delete", None, None, SOURCE, None, True))
                continue
            rec = snap.records[ch.path]
            rejected = rec.error or self.validator.check(collection, rkey, rec.record)
            if rejected is not None:
                metrics.REJECTED.labels(collection).inc()
            record = None if rec.error or rejected in UNSTORABLE else rec.record
            out.append(RecordEvent(snap.did, collection, rkey, snap.rev, ch.action, ch.cid, record, SOURCE, None,
                                   True, rejected))
        return out

    async def _finish(self, conn: psycopg.AsyncConnection, did: str, pds: str, snap: RepoSnapshot,
                      changes: list[Change]) -> None:
        events: list[RecordEvent | RepoEvent] = list(self._events(snap, changes))
        counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete")}
        # Resolved outside the lock, under a deadline (a handle check is a network round trip): every worker's
        # finish, and every live batch, waits on this lock.
        ident = await self._identity(did)
        doc = self.resolver.peek(did)  # the document `ident` was made from
        async with self.gate.lock:
            held, overflowed = self.gate.end(did)
            live, state = replay(ChainState(snap.rev, snap.data_cid, "synchronized"), held, overflowed,
                                 self.validator)
            if not self.gate.buffer_live:
                live = []  # the live pipeline logged them already
            # The DID was re-resolved meanwhile (a live `#identity`, which logs its own, newer identity row): ours
            # may be stale, and the log already has a newer one.
            stale = doc is not None and self.resolver.peek(did) is not doc
            marker = RepoEvent(did, "resync", {"data_cid": snap.data_cid, "records": len(snap.records), **counts,
                                               "replayed": len(live)}, SOURCE, None, snap.rev)
            async with conn.transaction():
                await append_batch(conn, [*([] if stale else [ident]), marker, *events, *live], repo_states=[
                    RepoState(did, state.rev, state.data_cid, state.sync_status, state.reason)])
                async with conn.cursor() as cur:
                    await jobs.done(cur, did, pds, snap.rev, len(snap.records), len(changes))
            self.repos[did] = state
        if state.sync_status != "synchronized":
            log.warning("backfill.gap", did=did, reason=state.reason)
            metrics.RESYNCS.labels("gap").inc()
            await jobs.enqueue(conn, [did], f"resync: {state.reason}", reset=True)
            self._again[did] = f"resync: {state.reason}"  # runs again once this run is over

    async def _identity(self, did: str, source: str = SOURCE) -> RepoEvent:
        """The repo's `identity` row, resolved under the identity deadline (an error payload past it)."""
        try:
            async with asyncio.timeout(self.identity_deadline_s):
                return await identity_event(self.resolver, self.handles, did, None, source, None, force=False)
        except TimeoutError:
            error = ResolveError(did, "timeout", f"identity resolution exceeded {self.identity_deadline_s:g} s")
            return RepoEvent(did, "identity", error_payload(error), source, None)

    async def _failed(self, conn: psycopg.AsyncConnection, did: str, pds: str | None, reason: str,
                      begun: bool) -> Outcome:
        log.warning("backfill.failed", did=did, pds=pds, reason=reason)
        metrics.RESYNCS.labels("failed").inc()
        if begun:
            await self._release(conn, did)
        await jobs.failed(conn, did, reason, pds)
        self.counters.failed += 1
        self.counters.failures[did] = reason
        return Outcome(did, False, reason)

    async def _release(self, conn: psycopg.AsyncConnection, did: str) -> None:
        """Stop holding `did` without a snapshot: its held commits go to the log as they are (verified),
        and the repo stays desynchronized."""
        async with self.gate.lock:
            held, _ = self.gate.end(did)
            state = self.repos.get(did)
            events: list[RecordEvent | RepoEvent] = []
            for h in held:
                f = h.frame
                if state is not None and f.rev <= state.rev:
                    continue
                if state is None:
                    events.append(await self._identity(did, h.source))
                if not hasattr(f, "ops"):
                    state = ChainState(f.rev, f.data_cid, "desynchronized", "#sync while resync failed")
                    continue
                if self.gate.buffer_live:
                    events.extend(commit_events(f, h.source, self.validator, verified=True))  # type: ignore[arg-type]
                state = ChainState(f.rev, f.data_cid, "desynchronized", "resync failed")
            if state is None or not held:
                return
            await append_batch(conn, events, repo_states=[
                RepoState(did, state.rev, state.data_cid, state.sync_status, state.reason)])
            self.repos[did] = state
