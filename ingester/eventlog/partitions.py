"""Partitions of `record_event` made ahead of need, inside the append transaction.

Each connection remembers the highest partition bound and the partition size it last read; only when
a batch's last seq comes within half a partition of that bound does the append call
`record_event_ensure_partitions` (migration 0016), which attaches the next partition (a SHARE UPDATE
EXCLUSIVE lock on the parent: readers and this transaction's own insert go on). Appends hold the log's
append lock, so two appenders never race to create the same partition. A missing partition would make
the insert fail like a poison frame; this check runs before it, so that cannot happen.
"""

from __future__ import annotations

import weakref

import psycopg

_known: weakref.WeakKeyDictionary[psycopg.AsyncConnection, tuple[int, int]] = weakref.WeakKeyDictionary()
_READ = ("SELECT coalesce((SELECT max(hi) FROM log_partition), 0),"
         " coalesce((SELECT partition_size FROM log_retention), 10000000)")


async def ensure_partition_for(cur: psycopg.AsyncCursor, last_seq: int) -> None:
    """Make sure `record_event` has a partition for every seq up to `last_seq` (and half a partition more)."""
    conn = cur.connection
    known = _known.get(conn)
    if known is None:
        await cur.execute(_READ)
        top, size = await cur.fetchone()  # type: ignore[misc]
        known = _known[conn] = (int(top), int(size))
    top, size = known
    if top > last_seq + size // 2:
        return
    await cur.execute("SELECT record_event_ensure_partitions(%s)", (last_seq,))
    await cur.execute(_READ)
    top, size = await cur.fetchone()  # type: ignore[misc]
    _known[conn] = (int(top), int(size))


def forget_partitions(conn: psycopg.AsyncConnection) -> None:
    """After a rollback: what this connection read inside it may not have been committed."""
    _known.pop(conn, None)


async def set_partition_size(conn: psycopg.AsyncConnection, size: int) -> None:
    """LOG_PARTITION_SIZE: the span of the partitions made from now on (existing ones keep theirs)."""
    await conn.execute("INSERT INTO log_retention (singleton, dropped_through, partition_size) VALUES (true, 0, %s)"
                       " ON CONFLICT (singleton) DO UPDATE SET partition_size = EXCLUDED.partition_size", (size,))
    forget_partitions(conn)
