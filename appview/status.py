"""/status: each source's committed cursor and lag, the log head, the projector's position and lag, and
the backfill: repos pending / running / done / failed (with reasons) / waiting for their account to be active
again, and the open jobs by reason (`gap:<source>`: the resyncs an outdated cursor enqueued).

Failure reasons are shown as categories (``getRepo: timeout``, ``DID does not resolve: refused``), never as
the stored text in full: older rows may carry a peer's error text, and /status is public."""

from __future__ import annotations

import re
from datetime import datetime

from psycopg import AsyncConnection
from pydantic import BaseModel

MAX_FAILURES_SHOWN = 100
# "<stage>: <first words>" — the words stop at the first bracket, colon or anything but plain characters.
_WORDS = re.compile(r"[A-Za-z0-9_ .#-]{1,48}")


def reason_category(error: str | None) -> str | None:
    """A failure's category: its stage and the first plain words of its reason."""
    if not error:
        return error
    head, sep, rest = error.partition(":")
    head_words = _WORDS.match(head)
    category = head_words.group(0).strip() if head_words else "error"
    if sep:
        rest_words = _WORDS.match(rest.strip())
        if rest_words and rest_words.group(0).strip():
            category += ": " + rest_words.group(0).strip()
    return category


class SourceStatus(BaseModel):
    source: str
    cursor: int
    updated_at: datetime
    lag_seconds: float  # since the cursor last moved


class BackfillFailure(BaseModel):
    did: str
    pds: str | None
    error: str | None
    attempts: int
    updated_at: datetime


class BackfillWaiting(BaseModel):
    did: str  # an account that was not active: fetched when its #account event says it is again
    reason: str
    error: str | None
    updated_at: datetime


class BackfillStatus(BaseModel):
    jobs: dict[str, int]  # pending | running | done | failed | waiting → repos
    records: int  # in-scope records in the snapshots applied
    changes: int  # events the backfill wrote
    per_pds: dict[str, dict[str, int]]
    failures: list[BackfillFailure]
    waiting: list[BackfillWaiting] = []
    # jobs not done, by why they were enqueued: `gap:<source>` (an outdated cursor), `listRepos …: account
    # deactivated`, `resync: …`, `reactivated: …`
    open_by_reason: dict[str, int] = {}


class ReplicaStatus(BaseModel):
    name: str  # replica-N, in DATABASE_READ_URL order (hosts are in the logs, not here)
    up: bool
    serving: bool  # reads go to it: up and at most DATABASE_READ_MAX_LAG_S behind
    error: str | None = None
    in_recovery: bool | None = None  # a hot standby
    replay_paused: bool | None = None
    projector_position: int | None = None
    lag_events: int | None = None  # the primary's projector position minus this replica's
    lag_bytes: int | None = None  # WAL not replayed yet
    lag_seconds: float | None = None  # since the primary wrote the oldest WAL not replayed yet (0: caught up)


class Status(BaseModel):
    log_head: int
    projector_position: int
    projector_lag_events: int
    sources: list[SourceStatus]
    repos: dict[str, int]
    backfill: BackfillStatus
    replicas: list[ReplicaStatus] = []  # DATABASE_READ_URL; this status itself is read from the primary


async def read_backfill(conn: AsyncConnection) -> BackfillStatus:
    async with conn.cursor() as cur:
        await cur.execute("SELECT status, count(*), coalesce(sum(records), 0), coalesce(sum(changes), 0)"
                          " FROM backfill_job GROUP BY status")
        rows = await cur.fetchall()
        await cur.execute("SELECT coalesce(pds, '?'), status, count(*) FROM backfill_job GROUP BY 1, 2")
        per_pds: dict[str, dict[str, int]] = {}
        for pds, status, n in await cur.fetchall():
            per_pds.setdefault(pds, {})[status] = int(n)
        await cur.execute("SELECT did, pds, error, attempts, updated_at FROM backfill_job WHERE status = 'failed'"
                          " ORDER BY updated_at DESC LIMIT %s", (MAX_FAILURES_SHOWN,))
        failures = [BackfillFailure(did=d, pds=p, error=reason_category(e), attempts=a, updated_at=u)
                    for d, p, e, a, u in await cur.fetchall()]
        await cur.execute("SELECT did, reason, error, updated_at FROM backfill_job WHERE status = 'waiting'"
                          " ORDER BY updated_at DESC LIMIT %s", (MAX_FAILURES_SHOWN,))
        waiting = [BackfillWaiting(did=d, reason=r, error=e, updated_at=u) for d, r, e, u in await cur.fetchall()]
        await cur.execute("SELECT reason, count(*) FROM backfill_job WHERE status <> 'done' GROUP BY reason"
                          " ORDER BY count(*) DESC, reason LIMIT %s", (MAX_FAILURES_SHOWN,))
        by_reason = {r: int(n) for r, n in await cur.fetchall()}
    return BackfillStatus(jobs={s: int(n) for s, n, _, _ in rows}, records=sum(int(r[2]) for r in rows),
                          changes=sum(int(r[3]) for r in rows), per_pds=per_pds, failures=failures,
                          waiting=waiting, open_by_reason=by_reason)


async def read_status(conn: AsyncConnection) -> Status:
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT coalesce(greatest((SELECT max(seq) FROM record_event), (SELECT max(seq) FROM repo_event),"
            " (SELECT max(seq) FROM label_event)), 0),"
            " coalesce((SELECT position FROM projection_cursor WHERE name = 'main'), 0)"
        )
        head, position = await cur.fetchone()  # type: ignore[misc]
        await cur.execute("SELECT source, cursor, updated_at, extract(epoch FROM now() - updated_at)::float8"
                          " FROM source_cursor ORDER BY source")
        sources = [SourceStatus(source=s, cursor=c, updated_at=u, lag_seconds=max(0.0, lag))
                   for s, c, u, lag in await cur.fetchall()]
        await cur.execute("SELECT sync_status, count(*) FROM repo_state GROUP BY sync_status")
        repos = {s: int(n) for s, n in await cur.fetchall()}
    return Status(log_head=head, projector_position=position, projector_lag_events=max(0, head - position),
                  sources=sources, repos=repos, backfill=await read_backfill(conn))
