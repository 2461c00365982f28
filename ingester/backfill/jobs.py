"""The `backfill_job` table: what to fetch, what is done, what failed and why (resumable after a crash).

Statuses: pending → running → done | failed, and `waiting`: an account that was not active (deactivated,
taken down, suspended…) when we found it or fetched it. It has no repo to serve, so it is not fetched
until its account becomes active again (`ingester.backfill.waiting`) or a listing shows it active.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from ingester.backfill.diff import Stored

_DISCOVERED = """
INSERT INTO backfill_job (did, status, reason)
SELECT d, %s, %s FROM unnest(%s::text[]) AS d
ON CONFLICT (did) DO NOTHING
"""
# A forced or resync enrolment resets any job that is not running right now.
_RESET = """
INSERT INTO backfill_job (did, status, reason)
SELECT d, %s, %s FROM unnest(%s::text[]) AS d
ON CONFLICT (did) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, error = NULL,
    updated_at = now()
WHERE backfill_job.status <> 'running'
"""
# A listing that shows the account active again: a waiting job becomes pending, other jobs are left alone.
_ACTIVE = """
INSERT INTO backfill_job (did, status, reason)
SELECT d, 'pending', %s FROM unnest(%s::text[]) AS d
ON CONFLICT (did) DO UPDATE SET status = 'pending', reason = EXCLUDED.reason, error = NULL, updated_at = now()
WHERE backfill_job.status = 'waiting'
"""
# getRepo errors of an account that is not active (sync.md §1.2): wait for its reactivation, not a retry.
INACTIVE_ERRORS = ("RepoDeactivated", "RepoTakendown", "RepoSuspended")
_STORED = """
SELECT DISTINCT ON (collection, rkey) collection, rkey, rev, action, cid
FROM record_event WHERE did = %s AND verified
ORDER BY collection, rkey, rev COLLATE "C" DESC, seq DESC
"""


async def enqueue(conn: psycopg.AsyncConnection, dids: Iterable[str], reason: str, *, reset: bool = False,
                  status: str = "pending", reactivate: bool = False) -> int:
    """Add jobs with `status` (pending, or waiting for an inactive account); repos already known are skipped
    unless `reset`, or (`reactivate`, for accounts a listing shows active) unless they were waiting.
    Returns how many rows changed."""
    dids = list(dict.fromkeys(dids))
    if not dids:
        return 0
    async with conn.cursor() as cur:
        if reactivate:
            await cur.execute(_ACTIVE, (reason[:500], dids))
        else:
            await cur.execute(_RESET if reset else _DISCOVERED, (status, reason[:500], dids))
        n = cur.rowcount
    await conn.commit()
    return n


async def runnable(conn: psycopg.AsyncConnection, *, retry_failed: bool, max_attempts: int) -> list[str]:
    """Jobs to run: pending, running (a crash interrupted them) and, if asked, failed ones with attempts left."""
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT did FROM backfill_job WHERE status IN ('pending', 'running')"
            " OR (%s AND status = 'failed' AND attempts < %s) ORDER BY created_at, did",
            (retry_failed, max_attempts),
        )
        rows = [r[0] for r in await cur.fetchall()]
    await conn.commit()
    return rows


async def desynchronized(conn: psycopg.AsyncConnection, max_attempts: int) -> list[tuple[str, str]]:
    """Desynchronized repos whose resync has attempts left."""
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT r.did, coalesce(r.desync_reason, 'desynchronized') FROM repo_state r"
            " LEFT JOIN backfill_job j ON j.did = r.did WHERE r.sync_status <> 'synchronized'"
            " AND (j.did IS NULL OR j.status NOT IN ('failed', 'waiting')"
            " OR (j.status = 'failed' AND j.attempts < %s))",
            (max_attempts,),
        )
        rows = [(r[0], r[1]) for r in await cur.fetchall()]
    await conn.commit()
    return rows


async def started(conn: psycopg.AsyncConnection, did: str, reason: str | None) -> None:
    async with conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO backfill_job (did, status, reason) VALUES (%s, 'running', coalesce(%s, 'direct'))"
            " ON CONFLICT (did) DO UPDATE SET status = 'running', reason = coalesce(%s, backfill_job.reason),"
            " updated_at = now()",
            (did, reason, reason),
        )
    await conn.commit()


async def failed(conn: psycopg.AsyncConnection, did: str, error: str, pds: str | None) -> None:
    """Record a failure; a repo whose account is not active goes `waiting` (no retries until it is)."""
    status = "waiting" if any(e in error for e in INACTIVE_ERRORS) else "failed"
    async with conn.cursor() as cur:
        await cur.execute(
            "UPDATE backfill_job SET status = %s, error = %s, attempts = attempts + 1,"
            " pds = coalesce(%s, pds), updated_at = now() WHERE did = %s",
            (status, error[:500], pds, did),
        )
    await conn.commit()


async def unfetched(conn: psycopg.AsyncConnection) -> list[str]:
    """Repos whose records we could not fetch: waiting for their account, or failed."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT did FROM backfill_job WHERE status IN ('waiting', 'failed')")
        rows = [r[0] for r in await cur.fetchall()]
    await conn.commit()
    return rows


async def done(cur: psycopg.AsyncCursor, did: str, pds: str, rev: str, records: int, changes: int) -> None:
    """Mark done inside the caller's transaction (the one that appends the snapshot's events)."""
    await cur.execute(
        "UPDATE backfill_job SET status = 'done', error = NULL, pds = %s, rev = %s, records = %s, changes = %s,"
        " updated_at = now() WHERE did = %s",
        (pds, rev, records, changes, did),
    )


async def status_of(conn: psycopg.AsyncConnection, did: str) -> str | None:
    async with conn.cursor() as cur:
        await cur.execute("SELECT status FROM backfill_job WHERE did = %s", (did,))
        row = await cur.fetchone()
    await conn.commit()
    return row[0] if row else None


async def stored_state(conn: psycopg.AsyncConnection, did: str) -> dict[str, Stored]:
    """What the log says about each record key of `did` (its latest verified event)."""
    async with conn.cursor() as cur:
        await cur.execute(_STORED, (did,))
        rows = await cur.fetchall()
    await conn.commit()
    return {f"{c}/{k}": Stored(rev, None if action == "delete" else cid) for c, k, rev, action, cid in rows}
