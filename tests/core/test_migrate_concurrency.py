"""Many processes migrating one fresh database at once: all succeed, the schema is applied once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import psycopg
import pytest

from core.db.migrate import upgrade
from tests.conftest import _with_db


@pytest.fixture
def empty_db(pg_server_url: str) -> Iterator[str]:
    name = f"appview_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_concurrent_upgrades_apply_once(empty_db: str) -> None:
    with ProcessPoolExecutor(4) as pool:
        results = [f.exception() for f in [pool.submit(upgrade, empty_db) for _ in range(4)]]
    assert results == [None] * 4
    with psycopg.connect(empty_db) as c:
        versions = c.execute("SELECT version_num FROM alembic_version").fetchall()
    assert len(versions) == 1
