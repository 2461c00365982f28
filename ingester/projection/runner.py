"""Stage ⑤: tail the log in seq order and fold it into projections.

Each step reads one page of the log and commits the projection rows together with the
projector's own position (the tracking pattern), so a crash never applies an event twice.
The same code runs live (woken by LISTEN/NOTIFY) and for a rebuild (from position 0).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
import structlog

from core.db.connect import NOTIFY_CHANNEL, PROJECTION_CHANNEL, PROJECTOR_LOCK, connect
from core.events import LoggedEvent, LoggedLabel, LoggedRecord, LoggedRepo
from core.health import ComponentState
from ingester.eventlog.read import HEAD as LOG_HEAD
from ingester.eventlog.read import read_after
from ingester.eventlog.staging import forget_stages
from ingester.metrics import PROJECTED, PROJECTOR_POSITION, REDONE, SKIPPED
from ingester.projection import counters, counts
from ingester.projection.actors import apply_identities, apply_repo_event
from ingester.projection.base import CollectionProjector, Derived, FlushHook
from ingester.projection.fold import BatchFold, Key, KeyState, SingleEventKeys
from ingester.projection.labels import apply_labels
from ingester.projection.registry import FLUSH_HOOKS, PROJECTORS
from ingester.projection.writes import TextArray, upsert_rows
from ingester.supervisor import Component, Supervisor

log = structlog.get_logger(__name__)

_LOAD_STATES = """
SELECT r.did, r.collection, r.rkey, r.rev, r.cid, r.deleted, r.item_id, r.seq
FROM record_state r
JOIN json_to_recordset(%s::json) AS k(did text, collection text, rkey text)
  ON r.did = k.did AND r.collection = k.collection AND r.rkey = k.rkey
"""
_STATE_COLUMNS = ("did", "collection", "rkey", "rev", "cid", "deleted", "item_id", "seq")
_STATE_TYPES = ("text", "text", "text", "text", "text", "bool", "int8", "int8")


class Projector:
    def __init__(
        self,
        *,
        name: str = "main",
        batch_size: int = 5000,
        project_unverified: bool = False,
        projectors: dict[str, CollectionProjector] | None = None,
        hooks: tuple[FlushHook, ...] = FLUSH_HOOKS,
        lock: bool = True,
        defer_derived: bool = False,
    ) -> None:
        # `lock`: live steps serialise on the projector lock, which a rebuild's swap also takes.
        self.lock = lock
        # `defer_derived` (a rebuild's bulk load): hooks that can `recompute` are skipped per flush, and so
        # are account events' recounts; `recompute_derived` then runs them once.
        self.defer_derived = defer_derived
        self.name = name
        self.batch_size = batch_size
        self.project_unverified = project_unverified
        self.projectors = projectors or PROJECTORS
        self.hooks = tuple(h for h in hooks if not isinstance(h, Derived)) if defer_derived else hooks
        self.deferred = tuple(h for h in hooks if isinstance(h, Derived)) if defer_derived else ()
        # Progress for the heartbeat: a step that consumed events, or found none (caught up). A projector
        # that keeps failing, or hangs inside a step, stops progressing while the log grows: /ready sees it.
        self.progress_at = time.monotonic()
        self.last_position: int | None = None
        # `trust_fresh`: records without any state are written straight into their tables (`Put.fresh`).
        self.trust_fresh = True
        # A rebuild's shortcut past state lookups (`fold.SingleEventKeys`); also off while `trust_fresh` is.
        self.single_event_keys: SingleEventKeys | None = None
        # Live mode looks at the log this often even without a NOTIFY (a safety net: appends always notify).
        self.idle_recheck_s = 1.0

    async def position(self, conn: psycopg.AsyncConnection) -> int:
        async with conn.cursor() as cur:
            await cur.execute("SELECT position FROM projection_cursor WHERE name = %s", (self.name,))
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def step(self, conn: psycopg.AsyncConnection, page: tuple[int, list[LoggedEvent]] | None = None) -> int:
        """Project one page of the log; returns how many events it consumed. `page`: (position, the events
        after it) read beforehand on another connection (a rebuild reads ahead); refused unless the
        committed position is that one."""
        try:
            n = await self._step(conn, page)
        except psycopg.errors.UniqueViolation as exc:
            # A row the fold took for a record's first met an existing one: the state was not kept in step
            # with the projections. Redo the step the safe way (every write an upsert) rather than stall.
            forget_stages(conn)
            if not self.trust_fresh:
                raise
            log.warning("projector.fresh_row_exists", error=str(exc), position=self.last_position)
            REDONE.inc()
            self.trust_fresh = False
            try:
                n = await self.step(conn, page)
            finally:
                self.trust_fresh = True
        except BaseException:
            forget_stages(conn)
            raise
        self.progress_at = time.monotonic()
        return n

    def probe(self) -> tuple[ComponentState, dict[str, Any]]:
        """The heartbeat's view: the API compares `position` with the log head and `progress_age_s`."""
        return "up", {"position": self.last_position,
                      "progress_age_s": round(time.monotonic() - self.progress_at, 3)}

    async def _step(self, conn: psycopg.AsyncConnection, page: tuple[int, list[LoggedEvent]] | None) -> int:
        async with conn.transaction(), conn.cursor() as cur:
            # BEGIN, the lock, the position and the log head in one round trip (each is one wait for the server,
            # and under load every wait costs a scheduling slot): the position is read once the lock is held.
            async with conn.cursor() as head_cur:
                async with conn.pipeline():
                    if self.lock:
                        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (PROJECTOR_LOCK,))
                    await cur.execute(
                        "SELECT position FROM projection_cursor WHERE name = %s FOR UPDATE", (self.name,)
                    )
                    await head_cur.execute(LOG_HEAD)
                row = await cur.fetchone()
                head_row = await head_cur.fetchone()
            position = int(row[0]) if row else 0
            head = int(head_row[0]) if head_row and head_row[0] is not None else 0
            if page is not None and page[0] != position:
                raise RuntimeError(f"page read after {page[0]}, but the projector is at {position}")
            events = page[1] if page is not None else await read_after(conn, position, self.batch_size, head)
            if not events:
                return 0
            await self._apply(cur, events)
            async with conn.pipeline():  # nothing to wait for between the two: one round trip
                await cur.execute(
                    "INSERT INTO projection_cursor (name, position) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
                    (self.name, events[-1].seq),
                )
                # Read-side caches key on this position: they learn of new projections at commit.
                await cur.execute("SELECT pg_notify(%s, %s)", (PROJECTION_CHANNEL, str(events[-1].seq)))
        PROJECTOR_POSITION.labels(self.name).set(events[-1].seq)
        self.last_position = events[-1].seq
        return len(events)

    async def recompute_derived(self, cur: psycopg.AsyncCursor) -> None:
        for hook in self.deferred:
            await hook.recompute(cur)

    async def catch_up(self, conn: psycopg.AsyncConnection, progress: Callable[[int], None] | None = None) -> int:
        total = 0
        while n := await self.step(conn):
            total += n
            if progress:
                progress(n)
        return total

    def component(self, url: str) -> Component:
        """The projector as a supervised component (a failure stalls only the projection; the log keeps
        growing and the restarted projector resumes from its committed position)."""
        return Component(name="projector" if self.name == "main" else f"projector:{self.name}", kind="projector",
                         run=lambda stop: self.follow(url, stop), probe=self.probe)

    async def run_forever(self, url: str, stop: asyncio.Event) -> None:
        """Live mode on its own (benchmarks): `follow` under a supervisor, restarted whenever it fails."""
        await Supervisor([self.component(url)]).run(stop)

    async def follow(self, url: str, stop: asyncio.Event) -> None:
        """Live mode: catch up, then wait for NOTIFY from appends, until `stop`; raises on failure."""
        async with await connect(url, autocommit=True) as listen, await connect(url) as work:
            await listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
            # Projections are derived: a step lost to a server crash is projected again from the (synchronously
            # committed) log, with the same result, and its rows and position are lost together. Not waiting for
            # the WAL flush takes a disk sync off every write's way to the API.
            await work.execute("SET synchronous_commit = off")
            self.last_position = await self.position(work)
            log.info("projector.started", name=self.name, position=self.last_position)
            await work.commit()
            while not stop.is_set():
                # A short page means the log was read to its head: whatever is appended after that NOTIFYs on
                # commit (the notification waits in the listening connection), so no empty step to confirm it.
                if await self.step(work) >= self.batch_size:
                    continue
                async for _ in listen.notifies(timeout=self.idle_recheck_s, stop_after=1):
                    pass

    async def _apply(self, cur: psycopg.AsyncCursor, events: list[LoggedEvent]) -> None:
        purged = await self._purged_revs(cur, list({e.did for e in events if not isinstance(e, LoggedLabel)}))
        pending: list[LoggedRecord] = []
        labels: list[LoggedLabel] = []
        # Identity events touch only `actor` (never `active`, which records and counts read): written together,
        # in log order, before any other repo event.
        identities: list[LoggedRepo] = []
        for ev in events:
            if isinstance(ev, LoggedLabel):
                labels.append(ev)  # labels touch only `label`: their order among records is irrelevant
                continue
            if isinstance(ev, LoggedRepo):
                if ev.kind == "identity":
                    identities.append(ev)
                    continue
                await apply_identities(cur, identities)
                identities = []
                recount = ev.kind == "account" and not self.defer_derived
                if ev.kind == "account":  # may purge: earlier records must be written first
                    await self._flush(cur, pending)
                    pending = []
                if recount:  # the account's likes and comments count only while it is active
                    touched = await counts.subjects_of_did(cur, ev.did)
                if await apply_repo_event(cur, ev, self.projectors) == "deleted":
                    purged.update(await self._purged_revs(cur, [ev.did]))
                if recount:
                    await counts.recount(cur, touched)
                    await counters.account_changed(cur, ev.did)
                continue
            if self._eligible(ev, purged):
                pending.append(ev)
        await apply_identities(cur, identities)
        await self._flush(cur, pending)
        if labels:
            await apply_labels(cur, labels, project_unverified=self.project_unverified)

    @staticmethod
    async def _purged_revs(cur: psycopg.AsyncCursor, dids: list[str]) -> dict[str, str]:
        # A join, not `did = ANY(%s)`: once the statement is prepared, its generic plan tests every actor row
        # against the whole array, one element at a time (seconds per 1M-event rebuild).
        await cur.execute(
            "SELECT a.did, a.purged_rev FROM unnest(%s::text[]) AS d(did) JOIN actor a ON a.did = d.did "
            "WHERE a.purged_rev IS NOT NULL", (TextArray(dids),)
        )
        return {r[0]: r[1] for r in await cur.fetchall()}

    def _eligible(self, ev: LoggedRecord, purged: dict[str, str]) -> bool:
        if ev.rejected is not None:
            SKIPPED.labels("rejected").inc()
            return False
        if not ev.verified and not self.project_unverified:
            SKIPPED.labels("unverified").inc()
            return False
        if ev.did in purged and ev.rev <= purged[ev.did]:
            # Written before the account was deleted: purged, never resurrected by a replay.
            SKIPPED.labels("account_deleted").inc()
            return False
        return ev.collection in self.projectors

    async def _flush(self, cur: psycopg.AsyncCursor, events: list[LoggedRecord]) -> None:
        if not events:
            return
        single = self.single_event_keys if self.trust_fresh else None
        keys = {(e.did, e.collection, e.rkey) for e in events} if single is None else single.to_look_up(events)
        initial: dict[Key, KeyState] = {}
        if keys:
            # Keys as one JSON text (orjson, in C): psycopg's text-array dumper is Python, per element.
            await cur.execute(_LOAD_STATES, (orjson.dumps(
                [{"did": d, "collection": c, "rkey": r} for d, c, r in keys]).decode(),))
            initial = {(r[0], r[1], r[2]): KeyState(*r[3:]) for r in await cur.fetchall()}
        fold = BatchFold(initial, trust_fresh=self.trust_fresh)
        for ev in events:
            fold.apply(ev)
        changes = fold.by_collection()
        tokens = [await hook.before(cur, changes) for hook in self.hooks]
        for collection, (puts, deleted) in changes.items():
            await self.projectors[collection].apply(cur, puts, deleted)
        states, fresh = fold.state_rows()
        # Before the hooks, which never read it: a COPY cannot run in the pipeline below.
        await upsert_rows(cur, "record_state", _STATE_COLUMNS, _STATE_TYPES, states, ("did", "collection", "rkey"),
                          fresh=fresh)
        # The hooks' statements go out together (the server runs them in order all the same): a hook waits only
        # where it reads a result, and the recounts that end a step take one round trip instead of one each.
        async with cur.connection.pipeline():
            for hook, token in zip(self.hooks, tokens, strict=True):
                await hook.after(cur, changes, token)
        PROJECTED.inc(len(events) - fold.skipped_stale)
        SKIPPED.labels("stale_rev").inc(fold.skipped_stale)
