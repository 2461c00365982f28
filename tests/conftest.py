"""Shared fixtures: a real Postgres (TEST_DATABASE_URL, else an embedded one), schema built by
running the Alembic migrations, one fresh database per test cloned from a migrated template."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from core.db.migrate import upgrade
from core.db.urls import libpq_url

# Every XRPC response served in tests is checked against its lexicon (AppviewSettings reads the env).
os.environ.setdefault("XRPC_VALIDATE_OUTPUT", "true")
# Offline: no real labelers (the labels e2e test runs its own, on the local PLC).
os.environ.setdefault("LABELERS", "")
# The local PDS, PLC and test servers live on 127.0.0.1 over http: settings-built services may reach them.
# Tests of the outbound guard itself build their clients with allow_private=False explicitly.
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE", "true")


def _with_db(url: str, name: str) -> str:
    base, _, query = libpq_url(url).partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield libpq_url(url)
        return
    from core.db.embedded import start_embedded

    # Not under pytest's own temp root: every pytest session run as root resets /tmp/pytest-of-root to 0700,
    # which locks a concurrently running session's Postgres (another user) out of its data directory.
    own = Path(tempfile.mkdtemp(prefix="appview-test-pg-"))
    own.chmod(0o755)
    pgdata = Path(os.environ.get("TEST_EMBEDDED_PGDATA", own / "data"))
    uri, server = start_embedded(pgdata, database="postgres")
    try:
        yield uri
    finally:
        server.cleanup()
        shutil.rmtree(own, ignore_errors=True)


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    name = f"appview_tmpl_{uuid.uuid4().hex[:8]}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(_with_db(pg_server_url, name))
    yield name
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"appview_test_{uuid.uuid4().hex[:10]}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield _with_db(pg_server_url, name)
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_db(pg_server_url: str) -> Iterator[str]:
    """A fresh database with no schema at all: for migrating it (step by step, or many at once)."""
    name = f"appview_mig_{uuid.uuid4().hex[:10]}"
    with _admin(pg_server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_db(pg_server_url, name)
    with _admin(pg_server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 protocol server (moto's), on a free loopback port, for the blob store and deploy's s3_init."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    from core.db.connect import connect

    async with await connect(db_url) as c:
        yield c
