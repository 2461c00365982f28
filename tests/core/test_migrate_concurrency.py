"""Many processes migrating one fresh database at once: all succeed, the schema is applied once."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import psycopg

from core.db.migrate import upgrade


def test_concurrent_upgrades_apply_once(empty_db: str) -> None:
    with ProcessPoolExecutor(4) as pool:
        results = [f.exception() for f in [pool.submit(upgrade, empty_db) for _ in range(4)]]
    assert results == [None] * 4
    with psycopg.connect(empty_db) as c:
        versions = c.execute("SELECT version_num FROM alembic_version").fetchall()
    assert len(versions) == 1
