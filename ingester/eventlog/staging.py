"""Per-connection temp staging tables for binary COPY, created once per connection and table.

Rows are removed with DELETE right after use rather than TRUNCATE (which costs milliseconds per
call); ON COMMIT DELETE ROWS keeps them from bloating across transactions.
"""

from __future__ import annotations

import weakref

import psycopg

_created: weakref.WeakKeyDictionary[psycopg.AsyncConnection, set[str]] = weakref.WeakKeyDictionary()


async def ensure_stage(cur: psycopg.AsyncCursor, name: str, ddl: str) -> None:
    """Create temp table `name` with `ddl` (a column list or a `LIKE` clause) if this connection lacks it."""
    seen = _created.setdefault(cur.connection, set())
    key = f"{name}|{ddl}"
    if key not in seen:
        await cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS "{name}" ({ddl}) ON COMMIT DELETE ROWS')
        seen.add(key)


def forget_stages(conn: psycopg.AsyncConnection) -> None:
    """Call when a transaction rolled back: tables it created are gone with it."""
    _created.pop(conn, None)
