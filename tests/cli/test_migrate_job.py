"""Migrations as a separate job: N concurrent `appview migrate` on a fresh database, and processes that wait
for the schema (MIGRATE_ON_START=false) instead of running DDL themselves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from core.db.migrate import SchemaNotAtHead, schema_revisions, wait_for_head
from tests.conftest import _with_db

N_MIGRATORS = 4


def _env(db_url: str, **extra: str) -> dict[str, str]:
    return dict(os.environ, DATABASE_URL=db_url, LOG_FORMAT="json", **extra)


def _appview(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _tables(db_url: str) -> set[str]:
    with psycopg.connect(db_url) as c:
        rows = c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_concurrent_migrate_commands_all_succeed_once(empty_db: str) -> None:
    procs = [_appview(_env(empty_db), "migrate") for _ in range(N_MIGRATORS)]
    results = [(p.wait(timeout=180), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0] * N_MIGRATORS, [err[-2000:] for _, err in results]
    current, heads, _ = schema_revisions(empty_db)
    assert current == heads and len(heads) == 1
    with psycopg.connect(empty_db) as c:
        assert c.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    assert {"record_event", "track", "component_health"} <= _tables(empty_db)


def test_without_migrate_on_start_a_process_never_migrates_and_says_what_to_run(empty_db: str) -> None:
    env = _env(empty_db, MIGRATE_ON_START="false", MIGRATE_WAIT_S="1")
    for command in ("serve", "ingest"):
        p = _appview(env, command)
        code, err = p.wait(timeout=120), p.stderr.read() if p.stderr else ""
        assert code == 2, err[-2000:]
        assert "appview migrate" in err and "MIGRATE_ON_START" in err and "Traceback" not in err
    assert "alembic_version" not in _tables(empty_db)  # nothing was created behind the migrate job's back


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_waits_for_the_migrate_job_then_serves(empty_db: str) -> None:
    port = _free_port()
    env = _env(empty_db, MIGRATE_ON_START="false", MIGRATE_WAIT_S="120", PORT=str(port), LABELERS="")
    api = _appview(env, "serve")
    try:
        time.sleep(2)
        assert api.poll() is None, api.stderr.read() if api.stderr else ""  # waiting, not failed
        assert "alembic_version" not in _tables(empty_db)
        job = _appview(_env(empty_db), "migrate")
        assert job.wait(timeout=180) == 0, job.stderr.read() if job.stderr else ""
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert api.poll() is None and time.monotonic() < deadline, api.stderr.read() if api.stderr else ""
                time.sleep(0.3)
        assert r.status_code == 200
    finally:
        api.terminate()
        api.wait(timeout=30)


def test_a_schema_newer_than_this_build_fails_at_once(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as c:
        c.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        c.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
    start = time.monotonic()
    with pytest.raises(SchemaNotAtHead, match="does not know"):
        wait_for_head(empty_db, timeout_s=60)
    assert time.monotonic() - start < 10


def test_an_unreachable_database_is_waited_for_then_named() -> None:
    dead = _with_db(f"postgresql://postgres@127.0.0.1:{_free_port()}/x", "nothing")
    seen: list[str] = []
    with pytest.raises(SchemaNotAtHead, match="unreachable"):
        wait_for_head(dead, timeout_s=1.5, on_wait=seen.append)
    assert seen and all("unreachable" in s for s in seen)
