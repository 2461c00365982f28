"""Log and projector gauges, read from the tables at scrape time (so any API process reports them,
whoever runs the ingester and wherever): the log head, and how far the projector trails it in events
and in seconds (the age of the oldest event it has not folded; 0 when caught up)."""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import Gauge
from psycopg_pool import AsyncConnectionPool

log = structlog.get_logger(__name__)

# `mostrecent`: with several API workers every scrape refreshes one worker's copy; the newest one wins.
LOG_HEAD = Gauge("appview_log_head_seq", "Highest seq committed to the event log", multiprocess_mode="mostrecent")
LAG_EVENTS = Gauge("appview_projector_lag_events", "Log head minus the projector's position",
                   multiprocess_mode="mostrecent")
LAG_SECONDS = Gauge("appview_projector_lag_seconds",
                    "Age of the oldest log event the projector has not folded yet (0 when caught up)",
                    multiprocess_mode="mostrecent")

_POSITION = """
SELECT coalesce(greatest((SELECT max(seq) FROM record_event), (SELECT max(seq) FROM repo_event),
                         (SELECT max(seq) FROM label_event)), 0),
       coalesce((SELECT position FROM projection_cursor WHERE name = 'main'), 0)
"""
# The first unfolded event of each log table (seq order = arrival order), the oldest of them.
_OLDEST = """
SELECT extract(epoch FROM now() - least(
    (SELECT received_at FROM record_event WHERE seq > %(p)s ORDER BY seq LIMIT 1),
    (SELECT received_at FROM repo_event WHERE seq > %(p)s ORDER BY seq LIMIT 1),
    (SELECT received_at FROM label_event WHERE seq > %(p)s ORDER BY seq LIMIT 1)))::float8
"""


async def read_lag(pool: AsyncConnectionPool) -> tuple[int, int, float]:
    """(log head, projector lag in events, projector lag in seconds)."""
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.execute(_POSITION)
        head, position = await cur.fetchone()  # type: ignore[misc]
        seconds = 0.0
        if head > position:
            await cur.execute(_OLDEST, {"p": position})
            row = await cur.fetchone()
            seconds = max(0.0, float(row[0])) if row is not None and row[0] is not None else 0.0
    return int(head), max(0, int(head) - int(position)), seconds


async def refresh_log_metrics(pool: AsyncConnectionPool, timeout_s: float = 2.0) -> None:
    """Update the gauges; a slow or unreachable database leaves them as they were (never fails a scrape)."""
    try:
        async with asyncio.timeout(timeout_s):
            head, lag_events, lag_seconds = await read_lag(pool)
    except Exception as e:  # noqa: BLE001 - the scrape must still answer
        log.warning("metrics.log_lag_unavailable", error=repr(e))
        return
    LOG_HEAD.set(head)
    LAG_EVENTS.set(lag_events)
    LAG_SECONDS.set(lag_seconds)
