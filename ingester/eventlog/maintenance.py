"""The ingester's `log-maintenance` component: the partition size in force, and LOG_RETENTION's trims."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import structlog

from core.db.connect import connect
from ingester.eventlog.partitions import set_partition_size
from ingester.eventlog.retention import trim_log

log = structlog.get_logger(__name__)
TRIM_INTERVAL_S = 600.0


async def log_maintenance(url: str, partition_size: int, retention_s: float | None, stop: asyncio.Event,
                          *, interval_s: float = TRIM_INTERVAL_S) -> None:
    """Record LOG_PARTITION_SIZE (partitions made from now on), then trim every `interval_s` when a
    retention is set; otherwise wait for shutdown (the default keeps everything)."""
    async with await connect(url, autocommit=True) as conn:
        await set_partition_size(conn, partition_size)
    while not stop.is_set():
        if retention_s is not None:
            try:
                async with await connect(url, autocommit=True) as conn:
                    result = await trim_log(conn, retention_s)
                if result.dropped:
                    log.info("log.trimmed", partitions=len(result.dropped), dropped_through=result.dropped_through)
            except psycopg.errors.LockNotAvailable:
                log.info("log.trim_deferred", reason="record_event busy; next pass retries")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
