"""The migration (0006) builds exactly what core/db/schema.py declares for labels and plays."""

from __future__ import annotations

import psycopg

from core.db.schema import actor_status, label, label_event, play, track


async def test_migration_matches_schema(conn: psycopg.AsyncConnection) -> None:
    for table in (label_event, label, play, actor_status):
        async with conn.cursor() as cur:
            await cur.execute(
                "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns"
                " WHERE table_name = %s ORDER BY ordinal_position", (table.name,))
            columns = await cur.fetchall()
            await cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", (table.name,))
            indexes = {r[0] for r in await cur.fetchall()}
        assert columns == [(c.name, bool(c.nullable)) for c in table.columns], table.name
        assert {ix.name for ix in table.indexes} <= indexes, table.name
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1 FROM pg_indexes WHERE tablename = 'track' AND indexname = 'track_title'")
        assert await cur.fetchone() is not None
    assert any(ix.name == "track_title" for ix in track.indexes)
