"""The fencing token checked inside every append transaction of a leading ingester.

A leader (ingester/leadership.py) runs its whole term — sources, backfill, heartbeat — with its lease
epoch in `FENCE`; tasks inherit it. Each append transaction locks the lease row (`FOR KEY SHARE`) and
compares the epoch: a takeover bumps the epoch after `SELECT … FOR UPDATE` on that row, which waits for
(or, if the old leader is stuck, terminates) every transaction holding the share lock. So a transaction
either committed before the takeover or sees the new epoch and aborts — whatever the old leader's
clock, pauses or sessions. Lease renewals are plain updates of non-key columns, which `FOR KEY SHARE`
does not conflict with: renewing never waits for appends. Without a fence (tests, `appview backfill`)
nothing is checked.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field

import psycopg
import structlog

from ingester.metrics import FENCED

log = structlog.get_logger(__name__)

LEASE = "ingest"


class Fenced(psycopg.OperationalError):
    """This process's lease epoch is no longer current: it must not write. An OperationalError, so every
    ingest path treats it as the database being unavailable (retried, never a reject, nothing dropped)
    until the term stops."""


@dataclass(eq=False)
class Fence:
    epoch: int
    name: str = LEASE
    lost: asyncio.Event = field(default_factory=asyncio.Event)  # set when a check finds a newer epoch


FENCE: ContextVar[Fence | None] = ContextVar("ingest_fence", default=None)


async def check_fence(cur: psycopg.AsyncCursor) -> None:
    """Inside a write transaction: raise `Fenced` unless our epoch is the lease's current one."""
    fence = FENCE.get()
    if fence is None:
        return
    await cur.execute("SELECT epoch FROM ingest_lease WHERE name = %s FOR KEY SHARE", (fence.name,))
    row = await cur.fetchone()
    current = None if row is None else int(row[0])
    if current != fence.epoch:
        FENCED.inc()
        fence.lost.set()
        log.warning("leader.fenced", epoch=fence.epoch, current=current)
        raise Fenced(f"lease {fence.name!r} epoch {fence.epoch} is over (now {current}): not the leader")
