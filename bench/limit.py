"""The machine's limit for a write workload: a plain binary COPY of the same rows into unindexed tables.

Takes the rows a run left in the database — the log (`record_event`, `repo_event`) and every projection table
(`PROJECTION_TABLES`, so a projection added later is counted too) — as binary COPY data held in memory, then
times writing them again with one `COPY … FROM STDIN (FORMAT BINARY)` per table, in one transaction on one
connection, into `CREATE TABLE … AS … WITH NO DATA` copies: logged, no index, no constraint, no generated
column (their values are copied as plain data), no trigger. Median of `repeat`; the tables are dropped after.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from core.db.connect import connect
from core.db.schema import PROJECTION_TABLES

LOG_TABLES = ("record_event", "repo_event")


@dataclass(frozen=True)
class Limit:
    rows: dict[str, int]
    nbytes: int
    seconds: float

    def rate(self, events: int) -> float:
        """`events` (the log events that produced these rows) per second at this limit."""
        return events / self.seconds

    def render(self) -> str:
        tables = ", ".join(f"{t} {n}" for t, n in self.rows.items() if n)
        return (f"plain COPY limit: {sum(self.rows.values())} rows ({self.nbytes / 1e6:.1f} MB binary) into "
                f"unindexed tables in {self.seconds:.3f} s ({tables})")


async def copy_limit(url: str, repeat: int = 3) -> Limit:
    names = [*LOG_TABLES, *(t.name for t, _ in PROJECTION_TABLES)]
    data: dict[str, bytes] = {}
    rows: dict[str, int] = {}
    async with await connect(url, autocommit=True) as conn:
        for name in names:
            buf = bytearray()
            async with conn.cursor() as cur:
                async with cur.copy(f'COPY (SELECT * FROM "{name}") TO STDOUT (FORMAT BINARY)') as cp:
                    async for chunk in cp:
                        buf += chunk
                await cur.execute(f'SELECT count(*) FROM "{name}"')
                rows[name] = int((await cur.fetchone() or (0,))[0])
            data[name] = bytes(buf)
        times = []
        for _ in range(repeat):
            for name in names:
                await conn.execute(f'DROP TABLE IF EXISTS "limit_{name}"')
                await conn.execute(f'CREATE TABLE "limit_{name}" AS SELECT * FROM "{name}" WITH NO DATA')
            await conn.execute("CHECKPOINT")
            t = time.perf_counter()
            async with conn.transaction(), conn.cursor() as cur:
                for name in names:
                    async with cur.copy(f'COPY "limit_{name}" FROM STDIN (FORMAT BINARY)') as cp:
                        view = memoryview(data[name])
                        for i in range(0, len(view), 1 << 20):
                            await cp.write(view[i:i + (1 << 20)])
            times.append(time.perf_counter() - t)
        for name in names:
            await conn.execute(f'DROP TABLE IF EXISTS "limit_{name}"')
    return Limit(rows, sum(map(len, data.values())), statistics.median(times))
