"""LOG_RETENTION: drop the oldest `record_event` partitions once nothing needs them.

A partition is dropped only when all three hold, checked oldest first (the first one that fails stops
the pass, so what is kept is always one contiguous range of seq):

- every event in its range (record and repo events alike) arrived longer ago than the retention;
- the projector has folded all of it (`projection_cursor` at or past its last seq), so the live
  projections never miss an event;
- it is not the partition the log is being appended to (its upper bound is at or below the head).

In the same transaction `log_retention.dropped_through` is raised to the partition's last seq: the
outbound stream's floor (a consumer below it gets `#info OutdatedCursor`, never a silent jump) and the
mark that makes `appview rebuild` refuse (a re-fold from position 0 of a trimmed log would silently
give another state; README "Log growth and retention"). `repo_event` and `label_event` are small and
not partitioned: their rows stay. `record_event_key` stays too, so a replayed old event is still a
duplicate and never appended twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import structlog

log = structlog.get_logger(__name__)

_CANDIDATES = "SELECT name, lo, hi FROM log_partition ORDER BY lo"
_GUARDS = """
SELECT coalesce((SELECT min(position) FROM projection_cursor), 0),
       coalesce(greatest((SELECT max(seq) FROM record_event), (SELECT max(seq) FROM repo_event)), 0),
       now() - make_interval(secs => %s)
"""
# The newest arrival in [lo, hi): commit order is seq order, so it is the row with the highest seq.
_NEWEST = """
SELECT greatest((SELECT received_at FROM record_event WHERE seq >= %(lo)s AND seq < %(hi)s ORDER BY seq DESC LIMIT 1),
                (SELECT received_at FROM repo_event WHERE seq >= %(lo)s AND seq < %(hi)s ORDER BY seq DESC LIMIT 1))
"""


@dataclass(frozen=True, slots=True)
class TrimResult:
    dropped: list[str]
    dropped_through: int  # the stream's floor after this pass


async def trim_log(conn: psycopg.AsyncConnection, retention_s: float, *, lock_timeout_s: float = 5.0) -> TrimResult:
    """Drop every partition that retention allows (see the module doc); one transaction per partition."""
    dropped: list[str] = []
    while True:
        async with conn.transaction(), conn.cursor() as cur:
            # DETACH takes an ACCESS EXCLUSIVE lock on record_event: never queue readers behind us for long.
            await cur.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
            # One trimmer at a time: only a leader runs log-maintenance, but a deposed one may still be mid-trim.
            await cur.execute("SELECT pg_try_advisory_xact_lock(hashtext('record_event retention'))")
            if not (await cur.fetchone())[0]:  # type: ignore[index]
                break
            await cur.execute(_GUARDS, (retention_s,))
            position, head, cutoff = await cur.fetchone()  # type: ignore[misc]
            await cur.execute(_CANDIDATES)
            candidates = await cur.fetchall()
            if len(candidates) < 2:
                break
            name, lo, hi = candidates[0]
            if hi - 1 > position or hi > head:
                break
            await cur.execute(_NEWEST, {"lo": lo, "hi": hi})
            newest = (await cur.fetchone())[0]  # type: ignore[index]
            if newest is not None and newest >= cutoff:
                break
            await cur.execute(f'ALTER TABLE record_event DETACH PARTITION "{name}"')
            await cur.execute(f'DROP TABLE "{name}"')
            await cur.execute("INSERT INTO log_retention (singleton, dropped_through) VALUES (true, %s)"
                              " ON CONFLICT (singleton) DO UPDATE"
                              " SET dropped_through ="
                              " greatest(log_retention.dropped_through, EXCLUDED.dropped_through)",
                              (hi - 1,))
            dropped.append(name)
            log.info("log.partition_dropped", partition=name, lo=lo, hi=hi, newest=str(newest))
    async with conn.cursor() as cur:
        await cur.execute("SELECT coalesce((SELECT dropped_through FROM log_retention), 0)")
        floor = int((await cur.fetchone())[0])  # type: ignore[index]
    return TrimResult(dropped, floor)
