"""Two `appview ingest` processes follow the real reference PDS on one database while accounts write: the
leader dies (`kill -9`), is paused (SIGSTOP) or has its database sessions terminated; the standby takes
over within the bound, every record event is in the log exactly once, and the projections equal a clean
rebuild. The paused leader, resumed, is refused by the fence and stands by."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from appview.status import read_status
from core.db.connect import connect
from ingester.leadership import session_names
from tests.e2e.failover_kit import (
    IngestProcess,
    Writer,
    assert_exactly_once,
    assert_projections_equal_a_rebuild,
    leader_of,
    lease,
    until_role,
)
from tests.e2e.test_ingest_localnet import handle
from tests.localnet.peer import Localnet, Xrpc

BOUND_S = 10.0  # issue 12: a standby takes over within 10 s of the leader's death


async def _pair(db_url: str, localnet: Localnet, tmp_path: Path, **env: str) -> tuple[IngestProcess, IngestProcess]:
    a = IngestProcess(db_url, localnet, tmp_path, "a", **env)
    b = IngestProcess(db_url, localnet, tmp_path, "b", **env)
    await a.start()
    await leader_of(db_url, [a])  # a first, so that we know who leads
    await b.start()
    await until_role(db_url, b, "standby")
    return a, b


async def _write(xrpc: Xrpc, db_url: str) -> Writer:
    """Accounts to write with, once the leader (which started at the PDS's live tip) committed a cursor: from
    then on, whoever leads resumes from a committed cursor and every write below is seen."""
    accounts = [await xrpc.create_account(handle(f"fo{i}")) for i in range(2)]
    async with await connect(db_url, autocommit=True) as conn:
        for _ in range(1200):
            if await (await conn.execute("SELECT 1 FROM source_cursor")).fetchone():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the leader committed no cursor in 60 s")
    return Writer(xrpc, accounts)


async def test_kill_9_of_the_leader_during_writes(localnet: Localnet, xrpc: Xrpc, db_url: str, tmp_path: Path) -> None:
    a, b = await _pair(db_url, localnet, tmp_path)
    try:
        assert await b.metric("ingester_leader") == 0.0
        assert await a.metric("ingester_leader") == 1.0
        # A standby runs no component: no source, projector, backfill or mirror.
        assert await b.metric("ingester_component_up") is None
        writer = await _write(xrpc, db_url)
        writing = asyncio.create_task(writer.run())
        await writer.reached(15)
        epoch = (await leader_of(db_url, [a]))[1]
        a.signal(signal.SIGKILL)
        killed = time.monotonic()
        new, new_epoch, _ = await leader_of(db_url, [b], after_epoch=epoch, timeout=BOUND_S + 20)
        took = time.monotonic() - killed
        print(f"kill -9: standby led after {took:.2f} s (epoch {epoch} → {new_epoch})")
        assert took < BOUND_S
        await writer.reached(40)
        writer.stop.set()
        await writing
        await assert_exactly_once(db_url, writer)
        assert await b.metric("ingester_leader") == 1.0
        async with await connect(db_url, autocommit=True) as conn:
            status = await read_status(conn)
        assert status.ingest is not None and status.ingest.leader is not None
        assert b.owns(status.ingest.leader.instance) and status.ingest.leader.epoch == new_epoch
        assert {i.role for i in status.ingest.instances if b.owns(i.instance)} == {"leader"}
    finally:
        await a.stop()
        assert await b.stop() == 0
    await assert_projections_equal_a_rebuild(db_url)


async def test_a_paused_leader_is_taken_over_and_fenced_when_it_resumes(
        localnet: Localnet, xrpc: Xrpc, db_url: str, tmp_path: Path) -> None:
    a, b = await _pair(db_url, localnet, tmp_path, INGEST_LEASE_S="4", INGEST_STANDBY_POLL_S="0.5")
    try:
        writer = await _write(xrpc, db_url)
        writing = asyncio.create_task(writer.run())
        await writer.reached(15)
        epoch = (await leader_of(db_url, [a]))[1]
        a.signal(signal.SIGSTOP)  # its sessions stay open in the server, its lock held: only the lease runs out
        paused = time.monotonic()
        await leader_of(db_url, [b], after_epoch=epoch, timeout=BOUND_S + 20)
        took = time.monotonic() - paused
        print(f"SIGSTOP: standby led after {took:.2f} s")
        assert took < BOUND_S
        await writer.reached(35)
        a.signal(signal.SIGCONT)  # it wakes up believing it leads, with frames in hand
        await until_role(db_url, a, "standby")
        await writer.reached(50)
        writer.stop.set()
        await writing
        await assert_exactly_once(db_url, writer)
        lost = [e for e in a.events() if e.get("event") == "leader.lost"]
        assert lost and lost[0]["epoch"] == epoch
        assert await a.metric("ingester_leader") == 0.0
    finally:
        await a.stop()
        await b.stop()
    await assert_projections_equal_a_rebuild(db_url)


async def test_the_leaders_sessions_terminated_by_the_server(
        localnet: Localnet, xrpc: Xrpc, db_url: str, tmp_path: Path) -> None:
    a, b = await _pair(db_url, localnet, tmp_path, INGEST_STANDBY_POLL_S="0.5")
    try:
        writer = await _write(xrpc, db_url)
        writing = asyncio.create_task(writer.run())
        await writer.reached(15)
        epoch, holder = await lease(db_url)
        assert holder is not None and a.owns(holder)
        name, lease_session = session_names(holder)
        started = time.monotonic()
        async with await connect(db_url, autocommit=True) as admin:
            # Hostile: every session of the leader is cut, again and again, for 3 s (a flapping network).
            while time.monotonic() - started < 3:
                await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE application_name = ANY(%s)", ([name, lease_session],))
                await asyncio.sleep(0.1)
        await leader_of(db_url, [b], after_epoch=epoch, timeout=BOUND_S)
        await until_role(db_url, a, "standby")  # it reconnected and stands by
        await writer.reached(40)
        writer.stop.set()
        await writing
        await assert_exactly_once(db_url, writer)
    finally:
        await a.stop()
        await b.stop()
    await assert_projections_equal_a_rebuild(db_url)
