"""A digest of every projection table: proves that replaying the log reproduces the projections.

`full` covers every column. `content` leaves out log coordinates (seq-derived ids, arrival
times), which a rebuild of the same log reproduces exactly but which legitimately differ when the
same writes reach the log in another interleaving.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import psycopg
from sqlalchemy import Table, Text

from core.db.schema import PROJECTION_TABLES

Mode = Literal["full", "content"]

# Rows the content digest leaves out: tombstones are fold bookkeeping, and only a reader who saw a record
# live has one (a backfill never learns of a record created and deleted before its snapshot).
_CONTENT_WHERE = {"record_state": "NOT deleted"}


@dataclass(frozen=True, slots=True)
class TableDigest:
    table: str
    rows: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Digest:
    mode: Mode
    tables: tuple[TableDigest, ...]

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for t in self.tables:
            h.update(f"{t.table}:{t.rows}:{t.sha256}\n".encode())
        return h.hexdigest()

    def render(self) -> str:
        lines = [f"{t.table:<16} {t.rows:>10}  {t.sha256}" for t in self.tables]
        lines.append(f"{'TOTAL (' + self.mode + ')':<16} {sum(t.rows for t in self.tables):>10}  {self.sha256}")
        return "\n".join(lines)


def _parts(table: Table, excluded: tuple[str, ...], mode: Mode) -> tuple[str, str, str]:
    """(row as text, its order, the filter) of one table, as the digest hashes it."""
    cols = [c.name for c in table.columns if mode == "full" or c.name not in excluded]
    pk = [c.name for c in table.primary_key.columns]
    if mode == "content" and any(c in excluded for c in pk):
        pk = [c.name for c in table.columns if c.unique] or cols  # order by the natural key instead
    order = ", ".join(
        f'"{c}" COLLATE "C"' if isinstance(table.c[c].type, Text) else f'"{c}"' for c in pk
    )
    row = "jsonb_build_array(" + ", ".join(f'"{c}"' for c in cols) + ")::text"
    where = f" WHERE {_CONTENT_WHERE[table.name]}" if mode == "content" and table.name in _CONTENT_WHERE else ""
    return row, order, where


def _query(table: Table, excluded: tuple[str, ...], mode: Mode) -> str:
    row, order, where = _parts(table, excluded, mode)
    return (
        f"SELECT count(*), encode(sha256(convert_to(coalesce(string_agg({row}, E'\\n' "
        f"ORDER BY {order}), ''), 'UTF8')), 'hex') FROM \"{table.name}\"{where}"
    )


async def table_rows(conn: psycopg.AsyncConnection, table_name: str, mode: Mode = "full") -> list[str]:
    """The rows of one projection table exactly as the digest hashes them (what two digests disagree on)."""
    table, excluded = next((t, e) for t, e in PROJECTION_TABLES if t.name == table_name)
    row, order, where = _parts(table, excluded, mode)
    async with conn.cursor() as cur:
        await cur.execute("SET LOCAL timezone = 'UTC'")
        await cur.execute(f'SELECT {row} FROM "{table.name}"{where} ORDER BY {order}')
        return [str(r[0]) for r in await cur.fetchall()]


async def digest(conn: psycopg.AsyncConnection, mode: Mode = "full") -> Digest:
    out = []
    async with conn.cursor() as cur:
        await cur.execute("SET LOCAL timezone = 'UTC'")
        for table, excluded in PROJECTION_TABLES:
            await cur.execute(_query(table, excluded, mode))
            count, sha = await cur.fetchone()  # type: ignore[misc]
            out.append(TableDigest(table.name, int(count), sha))
    return Digest(mode, tuple(out))
