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

from appview.leader_status import IngestStatus, read_ingest_status

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
    updated_at: datetime  # when the cursor last moved (an idle stream's cursor rests: that is not lag)
    # The real lag: with a live heartbeat from the ingester, how long the source's oldest received and
    # uncommitted frame has waited (0 when it is caught up, however long the stream has been quiet);
    # without one (no ingester, a stale heartbeat, a source without a queue) the time since the cursor moved.
    lag_seconds: float
    live: bool = False  # the lag comes from a fresh heartbeat of a connected source


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
    ingest: IngestStatus | None = None  # ingester leadership: the leader and every instance's role


HEARTBEAT_FRESH_S = 30.0  # a heartbeat older than this says nothing about the source's present
_SOURCES = """
SELECT c.source, c.cursor, c.updated_at, extract(epoch FROM now() - c.updated_at)::float8,
       (h.detail->>'lag_s')::float8, extract(epoch FROM now() - h.updated_at)::float8,
       coalesce(h.state = 'up' AND h.updated_at > now() - make_interval(secs => %s), false)
FROM source_cursor c LEFT JOIN component_health h ON h.component = c.source
ORDER BY c.source
"""


def _source(source: str, cursor: int, updated_at: datetime, since_moved: float, lag_s: float | None,
            heartbeat_age: float | None, live: bool) -> SourceStatus:
    if live and lag_s is not None:
        # A frame still waiting at the heartbeat has waited as long again since.
        lag = lag_s + (max(0.0, heartbeat_age or 0.0) if lag_s > 0 else 0.0)
        return SourceStatus(source=source, cursor=cursor, updated_at=updated_at, lag_seconds=lag, live=True)
    return SourceStatus(source=source, cursor=cursor, updated_at=updated_at, lag_seconds=max(0.0, since_moved))


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
        await cur.execute(_SOURCES, (HEARTBEAT_FRESH_S,))
        sources = [_source(*row) for row in await cur.fetchall()]
        await cur.execute("SELECT sync_status, count(*) FROM repo_state GROUP BY sync_status")
        repos = {s: int(n) for s, n in await cur.fetchall()}
    return Status(log_head=head, projector_position=position, projector_lag_events=max(0, head - position),
                  sources=sources, repos=repos, backfill=await read_backfill(conn),
                  ingest=await read_ingest_status(conn))
