"""Batched projection writes: binary COPY into a staging copy of the table, then one upsert; rows that
cannot conflict (a record's first row, `Put.fresh`) are COPYed straight into the table.

Table names are left unqualified on purpose: a rebuild runs the same code with a search_path
that puts its shadow schema first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.postgres import types as pg_types

from ingester.eventlog.staging import ensure_stage
from ingester.projection.base import Put

Row = tuple[Any, ...]


class TextArray(list[str]):
    """A `text[]` parameter dumped in one pass: psycopg's generic list dumper adapts element by element in
    Python, which was a tenth of the projector's time on the key lists of a large batch."""


class _TextArrayDumper(Dumper):
    oid = pg_types["text"].array_oid

    def dump(self, obj: TextArray) -> bytes:
        return ("{" + ",".join(['"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' for s in obj])
                + "}").encode()


psycopg.adapters.register_dumper(TextArray, _TextArrayDumper)


async def upsert_rows(
    cur: psycopg.AsyncCursor,
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict: Sequence[str],
    keep: Iterable[str] = (),
    *,
    fresh: Sequence[Sequence[Any]] = (),
) -> None:
    """Insert `rows`; on a key conflict overwrite every column except `conflict` and `keep`. `fresh`: rows
    whose key no row can hold yet, written by one COPY into the table itself (no stage, no conflict check:
    two round trips fewer, and a bulk load's fastest path). Should one meet a row after all, the COPY
    fails with a unique violation and the projector redoes the step without this path."""
    cols = ", ".join(f'"{c}"' for c in columns)
    if fresh:
        await _copy(cur, f'"{table}" ({cols})', types, fresh)
    if not rows:
        return
    stage = f"stage_{table}"
    await ensure_stage(cur, stage, f'LIKE "{table}"')
    await _copy(cur, f'"{stage}" ({cols})', types, rows)
    skip = set(conflict) | set(keep)
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in skip)
    target = ", ".join(f'"{c}"' for c in conflict)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    await cur.execute(
        f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{stage}" ON CONFLICT ({target}) {action}'
    )
    # ON COMMIT DELETE ROWS is not enough: a rebuild's last steps run as savepoints of one
    # transaction, and the next step must start from an empty stage.
    await cur.execute(f'DELETE FROM "{stage}"')


async def _copy(cur: psycopg.AsyncCursor, target: str, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    async with cur.copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(list(types))
        for row in rows:
            await cp.write_row(row)


def by_freshness(puts: Sequence[Put], build: Callable[[Put], Row]) -> tuple[list[Row], list[Row]]:
    """(rows of puts that may replace a row, rows of `Put.fresh` puts): `upsert_rows(rows, fresh=…)`."""
    rows: list[Row] = []
    fresh: list[Row] = []
    for p in puts:
        (fresh if p.fresh else rows).append(build(p))
    return rows, fresh


async def delete_keys(cur: psycopg.AsyncCursor, table: str, column: str, keys: Sequence[str]) -> None:
    if keys:
        await cur.execute(f'DELETE FROM "{table}" WHERE "{column}" = ANY(%s)', (TextArray(keys),))
