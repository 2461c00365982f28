"""What the status page shows, read with bounded queries so it renders quickly however large the log is.

The ingest chart reads only the newest `TAIL_CAP` log rows (a backwards walk of the `seq` primary key,
never a scan of the log) and buckets those that arrived in the last hour by minute. Per-minute lag is
the newest live commit of that minute: its arrival time minus the time its `rev` TID was minted by the
PDS (backfilled rows are left out: their revs are as old as the snapshot). Row counts are the statistics
collector's estimates; each section has its own statement timeout and shows as unavailable rather than block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
import structlog
from psycopg import AsyncConnection

from appview.status import Status, read_status
from core.blobstore.playability import PLAYABILITY_JOINS, PLAYABILITY_SQL, STATES, host_patterns

log = structlog.get_logger(__name__)

TAIL_CAP = 200_000  # log rows the chart may read: bounds its cost on a log of any size
SECTION_TIMEOUT_MS = 400
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
    rows: dict[str, int] | None = None
    unavailable: list[str] = field(default_factory=list)


_INGEST = f"""
WITH tail AS MATERIALIZED (
    SELECT seq, received_at, rev, source FROM record_event ORDER BY seq DESC LIMIT %(cap)s
)
SELECT date_trunc('minute', received_at) AS m, count(*),
       (array_agg(rev ORDER BY seq DESC) FILTER (WHERE source <> '{BACKFILL_SOURCE}'))[1],
       (array_agg(received_at ORDER BY seq DESC) FILTER (WHERE source <> '{BACKFILL_SOURCE}'))[1],
       (SELECT count(*) = %(cap)s AND min(received_at) > now() - interval '1 hour' FROM tail),
       now()
FROM tail WHERE received_at > now() - interval '1 hour'
GROUP BY m ORDER BY m
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


async def row_estimates(conn: AsyncConnection) -> dict[str, int]:
    """Live-row estimates from the statistics collector (kept current by inserts and deletes): free, where
    count(*) would scan the table."""
    rows = await (await conn.execute(
        "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE schemaname = current_schema()"
        " AND relname = ANY(%s)", (list(COUNTED_TABLES),))).fetchall()
    got = {str(r): int(n) for r, n in rows}
    return {t: got[t] for t in COUNTED_TABLES if t in got}


async def read_page(conn: AsyncConnection, audio_hosts: tuple[str, ...]) -> StatusPage:
    page = StatusPage()
    await conn.execute(f"SET statement_timeout = {SECTION_TIMEOUT_MS}")
    try:
        for name in ("status", "ingest", "playability", "rows"):
            try:
                async with conn.transaction():
                    if name == "status":
                        page.status = await read_status(conn)
                    elif name == "ingest":
                        page.ingest = await ingest_window(conn)
                    elif name == "playability":
                        page.playability = await playability_counts(conn, audio_hosts)
                    else:
                        page.rows = await row_estimates(conn)
            except psycopg.Error as e:  # a timeout or a missing table: show the rest
                log.warning("status_page.section_unavailable", section=name, reason=str(e)[:200])
                page.unavailable.append(name)
    finally:
        await conn.execute("RESET statement_timeout")
    return page
