"""Ingester leadership on a real Postgres: one leader, standbys take over, and the fence in the append
transaction refuses every write of an epoch that is over — also one caught between its statements."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg
import pytest

from core.db.connect import connect
from ingester.eventlog import append
from ingester.eventlog.append import append_batch
from ingester.eventlog.fence import FENCE, Fence, Fenced, check_fence
from ingester.leadership import LEADER_LOCK, Leadership, session_names
from tests.ingester import events as ev
from tests.ingester.tcp_blackhole import Blackhole

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
LEASE_S, POLL_S = 1.5, 0.1
LONG_LEASE_S = 20.0
SLACK_S = 6.0  # bounds here are loose (a shared CI machine); the e2e tests check the real 10 s bound


def put(n: int) -> object:
    return ev.put(A, "fm.plyr.track", f"3kaaaaaaaaa{n:02d}", f"3k00000000{n:02d}a", ev.track(f"t{n}"))


async def count(url: str) -> int:
    async with await connect(url, autocommit=True) as c:
        row = await (await c.execute("SELECT count(*) FROM record_event")).fetchone()
    assert row is not None
    return int(row[0])


async def lease(url: str) -> tuple[int, str | None]:
    async with await connect(url, autocommit=True) as c:
        row = await (await c.execute("SELECT epoch, holder FROM ingest_lease WHERE name = 'ingest'")).fetchone()
    assert row is not None
    return int(row[0]), row[1]


class Instance:
    """A Leadership whose term appends one event per tick under its fence, until told to stop."""

    def __init__(self, url: str, name: str, lease_s: float = LEASE_S) -> None:
        self.url = url
        self.leadership = Leadership(url, lease_s=lease_s, poll_s=POLL_S, instance=name)
        self.offset = 10_000 * (ord(name[0]) - ord("a"))  # distinct records per instance
        self.terms: list[int] = []
        self.written = 0
        self.refused = 0
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def term(self, stop: asyncio.Event) -> None:
        fence = FENCE.get()
        assert fence is not None
        self.terms.append(fence.epoch)
        async with await connect(self.url) as conn:
            while not stop.is_set():
                try:
                    await append_batch(conn, [put(self.offset + len(self.terms) * 1000 + self.written)])
                    self.written += 1
                except Fenced:
                    self.refused += 1
                except psycopg.OperationalError:
                    return  # our session was terminated
                await asyncio.sleep(0.02)

    def start(self) -> None:
        self.task = asyncio.create_task(self.leadership.run(self.stop, self.term))

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 15)


@pytest.fixture
async def pair(db_url: str) -> AsyncIterator[tuple[Instance, Instance]]:
    # A long lease: these takeovers must come from the freed lock, long before the lease could run out.
    a, b = Instance(db_url, "a", LONG_LEASE_S), Instance(db_url, "b", LONG_LEASE_S)
    yield a, b
    await asyncio.gather(a.close(), b.close())


async def until(predicate: object, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_one_leads_and_a_standby_takes_over_on_release(pair: tuple[Instance, Instance], db_url: str) -> None:
    a, b = pair
    a.start()
    await until(lambda: a.leadership.role == "leader")
    b.start()
    await asyncio.sleep(5 * POLL_S)
    assert b.leadership.role == "standby" and not b.terms  # a standby runs nothing
    await until(lambda: a.written >= 3)
    await a.close()  # releases its lease
    took = await until(lambda: b.leadership.role == "leader")
    assert took < LONG_LEASE_S / 2  # a poll or so, not a lease
    epoch, holder = await lease(db_url)
    assert (holder, epoch) == ("b", a.terms[0] + 1)
    await until(lambda: b.written >= 3)
    async with await connect(db_url, autocommit=True) as c:
        rows = await (await c.execute("SELECT instance, role FROM ingest_instance ORDER BY instance")).fetchall()
    assert rows == [("a", "stopped"), ("b", "leader")]


async def test_a_terminated_lease_session_hands_over_and_the_old_epoch_is_fenced(
        pair: tuple[Instance, Instance], db_url: str) -> None:
    a, b = pair
    a.start()
    await until(lambda: a.leadership.role == "leader")
    b.start()
    await until(lambda: a.written >= 2)
    async with await connect(db_url, autocommit=True) as admin:  # hostile: the leader's lock session dies
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND objid = %s::oid AND granted", (LEADER_LOCK & 0xFFFFFFFF,))
    took = await until(lambda: b.leadership.role == "leader")
    assert took < LONG_LEASE_S / 2  # the freed lock, not the lease's expiry
    await until(lambda: a.leadership.role == "standby")
    epoch, _ = await lease(db_url)
    async with await connect(db_url) as conn:  # whatever a's old term still tries is refused
        token = FENCE.set(Fence(a.terms[0]))
        try:
            with pytest.raises(Fenced):
                await append_batch(conn, [put(999)])
            async with await connect(db_url, autocommit=True) as c:
                cur = await c.execute("SELECT count(*) FROM record_event WHERE rkey = '3kaaaaaaaaa999'")
                row = await cur.fetchone()
            assert row == (0,)
        finally:
            FENCE.reset(token)
    assert epoch == a.terms[0] + 1


async def test_a_paused_leader_between_statements_is_terminated_and_appends_nothing(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The old leader holds the lease (epoch 1) and the lock, is inside an append transaction that passed
    # the fence check, and then stops (SIGSTOP, a GC pause): its lease runs out.
    async with await connect(db_url, autocommit=True) as ghost:
        await ghost.execute("UPDATE ingest_lease SET epoch = 1, holder = 'ghost', "
                            "expires_at = clock_timestamp() + interval '1 second'")
    paused, resume = asyncio.Event(), asyncio.Event()
    real = append.check_fence

    async def check_then_pause(cur: psycopg.AsyncCursor) -> None:
        await real(cur)
        paused.set()
        await resume.wait()

    monkeypatch.setattr(append, "check_fence", check_then_pause)
    # The ghost's lease session, still alive in the server.
    holder = await connect(db_url, autocommit=True, application_name=session_names("ghost")[1])
    await holder.execute("SELECT pg_advisory_lock(%s)", (LEADER_LOCK,))
    old = await connect(db_url)
    token = FENCE.set(Fence(1))
    try:
        stalled = asyncio.create_task(append_batch(old, [put(1)]))
        await paused.wait()
        standby = Instance(db_url, "b")
        started = time.monotonic()
        standby.start()
        await until(lambda: standby.leadership.role == "leader")
        took = time.monotonic() - started
        resume.set()
        with pytest.raises(psycopg.OperationalError):  # its session was terminated by the takeover
            await stalled
        assert holder.broken or holder.closed or await _dead(holder)
        assert (await lease(db_url))[0] == 2
        assert took < LEASE_S + SLACK_S
        await until(lambda: standby.written >= 2)
        assert standby.refused == 0
        await standby.close()
        assert await count(db_url) == standby.written  # the paused transaction's row never landed
    finally:
        FENCE.reset(token)
        await old.close()
        await holder.close()


async def test_a_leader_paused_holding_the_append_lock_before_its_fence_check_cannot_stall_the_next(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Stopped after taking the log's append lock but before locking the lease row: the takeover does not wait
    # for it, and ends the deposed instance's sessions (by name) so that the new leader's appends proceed.
    async with await connect(db_url, autocommit=True) as c:
        await c.execute("UPDATE ingest_lease SET epoch = 1, holder = 'ghost', expires_at = clock_timestamp()")
    paused, resume = asyncio.Event(), asyncio.Event()
    real = append.check_fence

    async def pause_then_check(cur: psycopg.AsyncCursor) -> None:
        if FENCE.get() is not None and FENCE.get().epoch == 1:  # type: ignore[union-attr]
            paused.set()
            await resume.wait()
        await real(cur)

    monkeypatch.setattr(append, "check_fence", pause_then_check)
    old = await connect(db_url, application_name=session_names("ghost")[0])
    token = FENCE.set(Fence(1))
    try:
        stalled = asyncio.create_task(append_batch(old, [put(1)]))
        await paused.wait()
    finally:
        FENCE.reset(token)
    standby = Instance(db_url, "b")
    standby.start()
    try:
        await until(lambda: standby.written >= 2)  # not stuck behind the ghost's append lock
    finally:
        resume.set()
        await standby.close()
        with pytest.raises(psycopg.OperationalError):
            await stalled
        await old.close()
    assert await count(db_url) == standby.written


async def test_a_partitioned_leader_steps_down_and_a_standby_takes_over(db_url: str) -> None:
    # The leader reaches Postgres through a proxy that we partition: its renewals get no answer (it steps
    # down by its own clock), its sessions live on in the server (the standby ends them once the lease ran
    # out), and after the network heals whatever it still tries is refused.
    hole = Blackhole(db_url)
    a, b = Instance(await hole.start(), "a"), Instance(db_url, "b")
    try:
        a.start()
        await until(lambda: a.leadership.role == "leader")
        b.start()
        await until(lambda: a.written >= 3)
        hole.freeze()
        cut, written = time.monotonic(), a.written
        await until(lambda: a.leadership.role == "standby", timeout=LEASE_S + SLACK_S)  # by its own clock
        await until(lambda: b.leadership.role == "leader", timeout=LEASE_S + SLACK_S)
        took = time.monotonic() - cut
        assert took < LEASE_S + SLACK_S
        await until(lambda: b.written >= 3)
        assert a.written <= written + 1  # at most the append in flight when the network went
        hole.heal()
        await until(lambda: b.written >= 6)
    finally:
        hole.heal()
        await asyncio.gather(a.close(), b.close())
        await hole.close()
    assert await count(db_url) == a.written + b.written  # every acknowledged append, once; nothing else


async def test_a_standby_busy_taking_over_is_not_terminated_unless_stuck(db_url: str) -> None:
    # The lease ran out; the lock is held by another standby (not the lease's holder) that is taking over.
    async with await connect(db_url, autocommit=True) as c:
        await c.execute("UPDATE ingest_lease SET epoch = 1, holder = 'old', expires_at = clock_timestamp()")
    other = await connect(db_url, autocommit=True, application_name=session_names("x")[1])
    await other.execute("SELECT pg_advisory_lock(%s)", (LEADER_LOCK,))
    b = Instance(db_url, "b")
    try:
        b.start()
        await asyncio.sleep(1.0)  # well within two leases of the expiry
        assert b.leadership.role == "standby" and not await _dead(other)
        took = await until(lambda: b.leadership.role == "leader", timeout=4 * LEASE_S)  # it is stuck, then
        assert took > 0.5
        assert await _dead(other)
    finally:
        await b.close()
        await other.close()


async def _dead(conn: psycopg.AsyncConnection) -> bool:
    try:
        await conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


async def test_without_a_fence_nothing_is_checked_and_a_wrong_epoch_is_refused(db_url: str) -> None:
    async with await connect(db_url) as conn:
        await append_batch(conn, [put(1)])  # tests, `appview backfill`: no fence
        fence = Fence(41)
        token = FENCE.set(fence)
        try:
            with pytest.raises(Fenced):
                await append_batch(conn, [put(2)])
            assert fence.lost.is_set()
            async with conn.transaction(), conn.cursor() as cur:  # the heartbeat's check, too
                with pytest.raises(Fenced):
                    await check_fence(cur)
        finally:
            FENCE.reset(token)
    assert await count(db_url) == 1
