"""Ingester failover: any number of `appview ingest` on one database, exactly one leads.

Leading takes two things on one dedicated connection (the *lease session*):
- the session advisory lock `LEADER_LOCK`, which Postgres frees the moment that session ends — a leader
  killed with `kill -9` (or whose session is terminated) is replaced within one standby poll;
- the `ingest_lease` row: a takeover bumps its `epoch` and sets `expires_at` (database clock), which the
  leader pushes forward every third of the lease. A leader that is paused or cut off from Postgres keeps
  its session (and lock) alive in the server but stops renewing: once the lease has run out, a standby
  terminates the lock's holder and takes over — within lease + poll.

Safety never rests on timing: the epoch is the fencing token that every append transaction checks under a
row lock (ingester/eventlog/fence.py). The takeover's `SELECT … FOR UPDATE` on the lease row waits for the
append transactions of the old epoch in flight (terminating them if they stall, e.g. a SIGSTOP'd leader
between statements), so an old leader's transaction either committed before the takeover or is refused.
The takeover then ends every session of the deposed instance (named `appview-ingest <host:pid:nonce>`): one
stopped while holding the log's append lock or the projector's lock, before any fence check, would stall us.

A term runs the whole ingester (sources, projector, backfill, blob mirror, heartbeat): standbys run
nothing but this loop. A term ends when the lease is lost, the lease session fails (step down at once:
the lock is gone, a standby may already lead), the fence refuses a write, or on shutdown (the lease is
then released, so a standby takes over within one poll).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import psycopg
import structlog

from core.db.connect import connect
from core.retry import Backoff, pause
from ingester.eventlog.fence import FENCE, LEASE, Fence
from ingester.metrics import LEADER, LEADER_EPOCH, LEADERSHIP, ROLE
from ingester.settings import IngesterSettings

log = structlog.get_logger(__name__)

# Beside core.db.connect's LOG_APPEND_LOCK (…01), PROJECTOR_LOCK (…02) and MIGRATE_LOCK (…10).
LEADER_LOCK = 0x706C79720003
ROLES = ("leader", "standby")
Term = Callable[[asyncio.Event], Awaitable[None]]
T = TypeVar("T")

_TAKE = """
UPDATE ingest_lease SET epoch = epoch + 1, holder = %(me)s, acquired_at = clock_timestamp(),
    renewed_at = clock_timestamp(), expires_at = clock_timestamp() + make_interval(secs => %(lease)s)
WHERE name = %(name)s RETURNING epoch
"""
_RENEW = """
UPDATE ingest_lease
SET renewed_at = clock_timestamp(), expires_at = clock_timestamp() + make_interval(secs => %(lease)s)
WHERE name = %(name)s AND epoch = %(epoch)s AND holder = %(me)s RETURNING epoch
"""
# Lease and lock in one statement: a standby that finds the lock free takes over without judging the lease.
_RELEASE = """
WITH released AS (UPDATE ingest_lease SET holder = NULL, expires_at = clock_timestamp()
                  WHERE name = %(name)s AND epoch = %(epoch)s AND holder = %(me)s RETURNING 1)
SELECT pg_advisory_unlock(%(lock)s), (SELECT count(*) FROM released)
"""
_SEEN = """
INSERT INTO ingest_instance (instance, role, epoch, host, pid) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (instance) DO UPDATE SET role = EXCLUDED.role, epoch = EXCLUDED.epoch, seen_at = now()
"""
# A paused or partitioned leader's lease session still holds the lock in the server: ended once its lease is
# over. Only that session (by name): the lock may also be another standby's, busy taking over — unless the
# lease has been over so long (2 leases) that whatever holds the lock is stuck too.
_TERMINATE_HOLDERS = """
SELECT l.pid, pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid = %(hi)s::oid AND l.objid = %(lo)s::oid AND l.objsubid = 1 AND l.granted
  AND l.pid <> pg_backend_pid() AND (%(stuck)s OR a.application_name = %(name)s)
"""
_TERMINATE_INSTANCE = """
SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND application_name = ANY(%s) AND pid <> pg_backend_pid()
"""
_STALE_INSTANCES = "DELETE FROM ingest_instance WHERE seen_at < now() - interval '1 hour'"


def instance_name() -> str:
    """host:pid:nonce — unique even where every container is pid 1 on a shared host name."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


def session_names(instance: str) -> tuple[str, str]:
    """The `application_name`s of an instance's sessions: its work, and its lease session (≤ 63 bytes)."""
    return f"appview-ingest {instance}"[:63], f"appview-ingest {instance} lease"[:63]


class LeaseLost(Exception):
    """The lease session failed or the lease was taken over: this instance no longer leads."""


class Leadership:
    def __init__(self, url: str, *, lease_s: float, poll_s: float, instance: str | None = None) -> None:
        self.url, self.lease_s, self.poll_s = url, lease_s, poll_s
        self.renew_s = lease_s / 3
        self.instance = instance or instance_name()
        self.host = socket.gethostname()
        self.role = "standby"
        self.epoch: int | None = None
        self._conn: psycopg.AsyncConnection | None = None
        self._set_role("standby", None)

    async def run(self, stop: asyncio.Event, term: Term) -> None:
        """Stand by until this instance leads, run `term` while it leads, and again, until `stop`."""
        crashes = Backoff(base_s=self.poll_s, cap_s=60.0)
        try:
            while not stop.is_set():
                taken = await self._stand_by(stop)
                if taken is None:
                    return
                if await self._lead(*taken, stop, term):
                    crashes.reset()
                else:  # the term itself died: let another instance lead first, and never spin
                    await pause(stop, crashes.next_delay())
        finally:
            await self._close("stopped")

    # --- standby ---

    async def _stand_by(self, stop: asyncio.Event) -> tuple[int, float] | None:
        """Poll until the lease is ours: (its epoch, when — before — we took it), or None on `stop`."""
        while not stop.is_set():
            try:
                conn = await self._connection()
                await _bounded(self._seen(conn, "standby", None), self.lease_s)
                started = time.monotonic()
                epoch = await self._try_take(conn)
                if epoch is not None:
                    return epoch, started
            except (psycopg.Error, OSError, TimeoutError) as e:
                log.warning("leader.poll_failed", instance=self.instance, error=str(e)[:300])
                await self._drop()
            await pause(stop, self.poll_s)
        return None

    async def _try_take(self, conn: psycopg.AsyncConnection) -> int | None:
        if not await self._try_lock(conn):
            expired, holder, stuck = await self._expired(conn)
            if not expired:
                return None
            async with conn.cursor() as cur:
                await cur.execute(_TERMINATE_HOLDERS, {"hi": LEADER_LOCK >> 32, "lo": LEADER_LOCK & 0xFFFFFFFF,
                                                       "stuck": stuck,
                                                       "name": session_names(holder)[1] if holder else ""})
                ended = [int(r[0]) for r in await cur.fetchall()]
            if not ended:
                return None
            log.warning("leader.expired_holder_terminated", instance=self.instance, holder=holder, pids=ended)
            for _ in range(20):  # the terminated backend frees the lock as it exits
                await asyncio.sleep(0.05)
                if await self._try_lock(conn):
                    break
            else:
                return None
        try:
            return await self._take(conn)
        except BaseException:
            await self._drop()  # the lock goes with the session
            raise

    async def _try_lock(self, conn: psycopg.AsyncConnection) -> bool:
        async with conn.cursor() as cur:
            await cur.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
            row = await cur.fetchone()
        return bool(row and row[0])

    async def _expired(self, conn: psycopg.AsyncConnection) -> tuple[bool, str | None, bool]:
        """(the lease is over, its holder, it has been over for two leases)."""
        async with conn.cursor() as cur:
            await cur.execute("SELECT expires_at < clock_timestamp(), holder,"
                              " expires_at < clock_timestamp() - make_interval(secs => %s)"
                              " FROM ingest_lease WHERE name = %s", (2 * self.lease_s, LEASE))
            row = await cur.fetchone()
        return (True, None, True) if row is None else (bool(row[0]), row[1], bool(row[2]))

    async def _take(self, conn: psycopg.AsyncConnection) -> int:
        """Bump the epoch. Waits for the old epoch's append transactions; ends those that stall."""
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute("INSERT INTO ingest_lease (name) VALUES (%s) ON CONFLICT DO NOTHING", (LEASE,))
            await self._unblocked(conn, cur.execute(
                "SELECT holder FROM ingest_lease WHERE name = %s FOR UPDATE", (LEASE,)))
            old = await cur.fetchone()
            await cur.execute(_TAKE, {"me": self.instance, "lease": self.lease_s, "name": LEASE})
            row = await cur.fetchone()
            assert row is not None
            await cur.execute(_SEEN, (self.instance, "leader", int(row[0]), self.host, os.getpid()))
        holder = old[0] if old else None
        if holder is not None and holder != self.instance:
            # The deposed leader may be stopped inside a transaction that holds the log's append lock or the
            # projector's lock, before its fence check: end every session it has, or we would wait on them.
            async with conn.cursor() as cur:
                await cur.execute(_TERMINATE_INSTANCE, (list(session_names(holder)),))
                ended = [int(r[0]) for r in await cur.fetchall()]
            if ended:
                log.warning("leader.deposed_sessions_terminated", instance=self.instance, deposed=holder, pids=ended)
        return int(row[0])

    async def _unblocked(self, conn: psycopg.AsyncConnection, query: Coroutine[Any, Any, T]) -> T:
        """Run `query`; while it waits on a lock for longer than a poll, terminate whoever blocks it (only
        transactions of the old epoch, or that epoch's renewal, hold locks on the lease row)."""
        task = asyncio.ensure_future(query)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.poll_s)
                if done:
                    return task.result()
                async with await connect(self.url, autocommit=True) as side, side.cursor() as cur:
                    await cur.execute("SELECT pid, pg_terminate_backend(pid) FROM unnest(pg_blocking_pids(%s)) pid",
                                      (conn.info.backend_pid,))
                    ended = [int(r[0]) for r in await cur.fetchall()]
                log.warning("leader.stalled_writer_terminated", instance=self.instance, pids=ended)
        finally:
            if not task.done():
                task.cancel()

    # --- leader ---

    async def _lead(self, epoch: int, taken_at: float, stop: asyncio.Event, term: Term) -> bool:
        """Run `term` while we lead; False when the term ended by itself (a crash), not by a loss or `stop`."""
        valid_until = taken_at + self.lease_s  # by our clock, never later than the lease's own expiry
        fence = Fence(epoch)
        self._set_role("leader", epoch)
        LEADERSHIP.labels("acquired").inc()
        log.info("leader.acquired", instance=self.instance, epoch=epoch)
        term_stop = asyncio.Event()

        async def run_term() -> None:
            FENCE.set(fence)  # this task's context: every task the term starts inherits the fence
            await term(term_stop)

        task = asyncio.create_task(run_term(), name=f"leader-term:{epoch}")
        reason = "shutdown"
        try:
            while True:
                await _first(stop.wait(), fence.lost.wait(), task, within=self.renew_s)
                if stop.is_set():
                    break
                if fence.lost.is_set():
                    reason = "fenced"
                    break
                if task.done():
                    reason = f"term ended: {task.exception()!r}" if not task.cancelled() else "term ended: cancelled"
                    break
                started = time.monotonic()
                if started > valid_until:  # we were paused or starved past the lease: it may be someone else's
                    reason = "lease ran out before renewal"
                    break
                try:
                    # No answer before our lease would run out: it may be someone else's by then.
                    await _bounded(self._renew(epoch), max(0.05, valid_until - started))
                except (psycopg.Error, OSError, TimeoutError, LeaseLost) as e:
                    reason = f"{type(e).__name__}: {e}"[:300]
                    break
                valid_until = started + self.lease_s
        finally:
            term_stop.set()
            if reason == "shutdown":
                await asyncio.gather(task, return_exceptions=True)  # its last heartbeat still under our fence
                await self._close("stopped", epoch)
                LEADERSHIP.labels("released").inc()
                log.info("leader.released", instance=self.instance, epoch=epoch)
                self._set_role("standby", None)
            else:
                # The lease may be someone else's already: say so at once; the term winds down after (its
                # writes are refused meanwhile, and in a partition its queries may take a while to give up).
                await self._drop()
                self._set_role("standby", None)
                LEADERSHIP.labels("lost").inc()
                log.warning("leader.lost", instance=self.instance, epoch=epoch, reason=reason)
                await asyncio.gather(task, return_exceptions=True)
        return not reason.startswith("term ended")

    async def _renew(self, epoch: int) -> None:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            raise LeaseLost("the lease session is gone")
        async with conn.cursor() as cur:
            await cur.execute(_RENEW, {"lease": self.lease_s, "name": LEASE, "epoch": epoch, "me": self.instance})
            if await cur.fetchone() is None:
                raise LeaseLost(f"epoch {epoch} was taken over")
            await cur.execute(_STALE_INSTANCES)
        await self._seen(conn, "leader", epoch)

    # --- connection, status ---

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await connect(self.url, autocommit=True, connect_timeout=max(2, int(self.lease_s)),
                                       application_name=session_names(self.instance)[1])
        return self._conn

    async def _seen(self, conn: psycopg.AsyncConnection, role: str, epoch: int | None) -> None:
        await conn.execute(_SEEN, (self.instance, role, epoch, self.host, os.getpid()))

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except (psycopg.Error, OSError) as e:
                log.warning("leader.close_failed", error=str(e)[:300])

    async def _close(self, role: str, epoch: int | None = None) -> None:
        """Best effort on the way out: release our lease (a standby then takes over within one poll)."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            try:
                async with asyncio.timeout(3):
                    if epoch is not None:
                        await conn.execute(_RELEASE, {"name": LEASE, "epoch": epoch, "me": self.instance,
                                                      "lock": LEADER_LOCK})
                    await self._seen(conn, role, None)
            except (psycopg.Error, OSError, TimeoutError) as e:
                log.warning("leader.release_failed", instance=self.instance, error=str(e)[:300])
        await self._drop()

    def _set_role(self, role: str, epoch: int | None) -> None:
        self.role, self.epoch = role, epoch
        LEADER.set(1 if role == "leader" else 0)
        LEADER_EPOCH.set(epoch or 0)
        for r in ROLES:
            ROLE.labels(self.instance, r).set(1 if r == role else 0)


async def _first(*waits: Awaitable[Any], within: float) -> None:
    """Until any of `waits` finishes or `within` seconds; the others are cancelled (tasks passed in are left alone)."""
    futures = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(futures, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for f, w in zip(futures, waits, strict=True):
            if f is not w:
                f.cancel()


async def _bounded(coro: Coroutine[Any, Any, T], within: float) -> T:
    """`coro` within `within` seconds, else TimeoutError at once — even if the query underneath cannot be cancelled
    promptly (a partitioned network): the task is cancelled and abandoned, its connection dropped by the caller."""
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise TimeoutError(f"no answer within {within:.1f} s")
    return task.result()


async def run_ingester(settings: IngesterSettings, url: str, stop: asyncio.Event, *,
                       firehose_cursor: int | None = None, jetstream_cursor: int | None = None) -> None:
    """`appview ingest`: stand by, and run a fresh `Ingester` for each term this instance leads (a term's
    caches — repo chain states, tracked repos — may be stale after another instance led). A cursor forced
    on the command line applies to the first term only: a later one resumes from the committed cursors."""
    from ingester.service import Ingester  # the composition root, imported where it is used

    leadership = Leadership(url, lease_s=settings.ingest_lease_s, poll_s=settings.ingest_standby_poll_s)
    # Every session of this process names the instance (pg_stat_activity), unless the URL names one: a
    # takeover ends the deposed instance's sessions by this name.
    os.environ["PGAPPNAME"] = session_names(leadership.instance)[0]
    forced = {"firehose": firehose_cursor, "jetstream": jetstream_cursor}

    async def term(term_stop: asyncio.Event) -> None:
        writer = Ingester(settings, url)
        writer.start.force(**forced)
        forced.update(firehose=None, jetstream=None)
        await writer.run(term_stop)

    await leadership.run(stop, term)
