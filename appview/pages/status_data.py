"""What the status page shows, read with bounded queries so it renders quickly however large the log is.

The ingest chart reads only the newest `TAIL_CAP` log rows (a backwards walk of the `seq` primary key,
never a scan of the log) and buckets those that arrived in the last hour by minute. Per-minute lag is
the newest live commit of that minute: its arrival time minus the time its `rev` TID was minted by the
PDS (backfilled rows are left out: their revs are as old as the snapshot). Row counts are the statistics
collector's estimates; each section has its own statement timeout and shows as unavailable rather than block.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from appview.status import Status, read_status
from core.blobstore.playability import PLAYABILITY_JOINS, PLAYABILITY_SQL, STATES, host_patterns

log = structlog.get_logger(__name__)

TAIL_CAP = 100_000  # log rows the chart may read: bounds its cost on a log of any size (~150 ms)
SECTION_TIMEOUT_MS = 600
PLAYABILITY_TTL_S = 60.0
PLAYABILITY_TIMEOUT_MS = 60_000
FIRST_WAIT_S = 0.3  # how long a page waits for a playability count that is being computed
WINDOW_MINUTES = 60
COUNTED_TABLES = ("record_event", "repo_event", "label_event", "actor", "track", "like", "comment", "list",
                  "label", "play")
BACKFILL_SOURCE = "backfill"
_S32 = "234567abcdefghijklmnopqrstuvwxyz"


def tid_time(tid: str | None) -> datetime | None:
    """When a TID was minted (microseconds since the epoch in its top 53 bits); None if it is not a TID."""
    if not tid or len(tid) != 13 or any(c not in _S32 for c in tid) or tid[0] not in _S32[:16]:
        return None
    v = 0
    for c in tid:
        v = v * 32 + _S32.index(c)
    try:
        return datetime.fromtimestamp((v >> 10) / 1e6, UTC)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Minute:
    start: datetime
    events: int
    lag_s: float | None  # newest live commit of the minute: arrival − rev time


@dataclass(slots=True)
class IngestWindow:
    minutes: list[Minute] = field(default_factory=list)
    truncated: bool = False  # the hour held more than TAIL_CAP rows: only the newest are counted
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def events(self) -> int:
        return sum(m.events for m in self.minutes)


@dataclass(slots=True)
class StatusPage:
    status: Status | None = None
    ingest: IngestWindow | None = None
    playability: dict[str, int] | None = None
    playability_at: datetime | None = None
    rows: dict[str, int] | None = None
    unavailable: list[str] = field(default_factory=list)


# The tail is read once (MATERIALIZED); per minute, the newest live event's rev is fetched by its seq.
_INGEST = f"""
WITH tail AS MATERIALIZED (
    SELECT seq, received_at, source FROM record_event ORDER BY seq DESC LIMIT %(cap)s
), per_minute AS (
    SELECT date_trunc('minute', received_at) AS m, count(*) AS n,
           max(seq) FILTER (WHERE source <> '{BACKFILL_SOURCE}') AS live
    FROM tail WHERE received_at > now() - interval '1 hour' GROUP BY m
)
SELECT p.m, p.n, e.rev, e.received_at,
       (SELECT count(*) = %(cap)s AND min(received_at) > now() - interval '1 hour' FROM tail), now()
FROM per_minute p LEFT JOIN record_event e ON e.seq = p.live
ORDER BY p.m
"""


async def ingest_window(conn: AsyncConnection, cap: int = TAIL_CAP) -> IngestWindow:
    rows = await (await conn.execute(_INGEST, {"cap": cap})).fetchall()
    out = IngestWindow()
    for m, n, rev, arrived, truncated, now in rows:
        minted = tid_time(rev)
        lag = max(0.0, (arrived - minted).total_seconds()) if minted is not None and arrived is not None else None
        out.minutes.append(Minute(m, int(n), lag))
        out.truncated, out.now = bool(truncated), now
    return out


async def playability_counts(conn: AsyncConnection, hosts: tuple[str, ...]) -> dict[str, int]:
    sql = f"SELECT {PLAYABILITY_SQL} AS p, count(*) FROM track t {PLAYABILITY_JOINS} GROUP BY p"
    rows = await (await conn.execute(sql, {"audio_hosts": host_patterns(hosts)})).fetchall()
    got = {str(p): int(n) for p, n in rows}
    return {s: got.get(s, 0) for s in STATES}


class PlayabilityCache:
    """Playability needs every track classified (~2.7 s for 100k tracks on 2 cores): far too slow for a page
    that must render in a second. It is computed in the background, at most every `PLAYABILITY_TTL_S`, and
    the page shows the last result with its time; a page waits `FIRST_WAIT_S` for a computation under way."""

    def __init__(self) -> None:
        self.value: dict[str, int] | None = None
        self.at: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    async def get(self, pool: AsyncConnectionPool, hosts: tuple[str, ...]) -> tuple[dict[str, int] | None,
                                                                                   datetime | None]:
        stale = self.at is None or (datetime.now(UTC) - self.at).total_seconds() > PLAYABILITY_TTL_S
        if stale and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._refresh(pool, hosts), name="status-page-playability")
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=FIRST_WAIT_S)
        return self.value, self.at

    async def _refresh(self, pool: AsyncConnectionPool, hosts: tuple[str, ...]) -> None:
        try:
            async with pool.connection() as conn:
                await conn.execute(f"SET LOCAL statement_timeout = {PLAYABILITY_TIMEOUT_MS}")
                self.value, self.at = await playability_counts(conn, hosts), datetime.now(UTC)
        except (psycopg.Error, OSError) as e:
            log.warning("status_page.playability_failed", reason=str(e)[:200])

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def row_estimates(conn: AsyncConnection) -> dict[str, int]:
    """Live-row estimates from the statistics collector (kept current by inserts and deletes): free, where
    count(*) would scan the table."""
    # A partitioned table (record_event) has no statistics row of its own: its partitions' are summed.
    rows = await (await conn.execute(
        "SELECT coalesce(p.relname, s.relname), sum(s.n_live_tup) FROM pg_stat_user_tables s"
        " LEFT JOIN pg_inherits i ON i.inhrelid = s.relid LEFT JOIN pg_class p ON p.oid = i.inhparent"
        " WHERE s.schemaname = current_schema() AND coalesce(p.relname, s.relname) = ANY(%s) GROUP BY 1",
        (list(COUNTED_TABLES),))).fetchall()
    got = {str(r): int(n) for r, n in rows}
    return {t: got[t] for t in COUNTED_TABLES if t in got}


async def read_page(conn: AsyncConnection, pool: AsyncConnectionPool, audio_hosts: tuple[str, ...],
                    playability: PlayabilityCache) -> StatusPage:
    page = StatusPage()
    await conn.execute(f"SET statement_timeout = {SECTION_TIMEOUT_MS}")
    try:
        for name in ("status", "ingest", "rows"):
            try:
                async with conn.transaction():
                    if name == "status":
                        page.status = await read_status(conn)
                    elif name == "ingest":
                        page.ingest = await ingest_window(conn)
                    else:
                        page.rows = await row_estimates(conn)
            except psycopg.Error as e:  # a timeout or a missing table: show the rest
                log.warning("status_page.section_unavailable", section=name, reason=str(e)[:200])
                page.unavailable.append(name)
    finally:
        await conn.execute("RESET statement_timeout")
    page.playability, page.playability_at = await playability.get(pool, audio_hosts)
    return page
