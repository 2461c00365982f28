"""Fixtures for Jetstream end-to-end tests: the fake Jetstream on the local PDS, extra databases, ingesters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pytest

from core.db.connect import connect
from core.db.urls import libpq_url
from ingester.projection.digest import Digest, digest, table_rows
from ingester.settings import IngesterSettings
from tests.e2e.conftest import RunningIngester
from tests.jetstream_fake.server import FakeJetstream
from tests.localnet.peer import Localnet


@pytest.fixture
async def jetstream(localnet: Localnet) -> AsyncIterator[FakeJetstream]:
    """A Jetstream following the PDS from its live tip (start it before writing the world)."""
    fake = await FakeJetstream(localnet.ws_url).start()
    yield fake
    await fake.stop()


@pytest.fixture
def new_db(pg_server_url: str, template_db: str) -> Iterator[Callable[[], str]]:
    """Makes more fresh, migrated databases (one per ingester compared)."""
    names: list[str] = []
    base, _, query = libpq_url(pg_server_url).partition("?")
    base = base.rsplit("/", 1)[0]

    def make() -> str:
        name = f"appview_js_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        names.append(name)
        return f"{base}/{name}" + (f"?{query}" if query else "")

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def jetstream_settings(db_url: str, localnet: Localnet, url: str, version: str, **overrides: Any) -> IngesterSettings:
    return IngesterSettings(database_url=db_url, firehose_hosts="", jetstream_urls=url, jetstream_version=version,
                            plc_url=localnet.plc_url, project_unverified=True, ingest_batch_max=500,
                            **({"labelers": ""} | overrides))


async def start_jetstream_ingester(db_url: str, localnet: Localnet, fake: FakeJetstream, version: str,
                                   **overrides: Any) -> RunningIngester:
    running = RunningIngester(jetstream_settings(db_url, localnet, fake.url, version, **overrides), db_url)
    await running.start()
    return running


async def content_digest(db_url: str) -> Digest:
    async with await connect(db_url) as conn:
        d = await digest(conn, "content")
        await conn.commit()
        return d


async def rows(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with await connect(db_url, autocommit=True) as conn, conn.cursor() as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def explain(urls: dict[str, str], digests: dict[str, Digest]) -> str:
    """What the first path's projections hold that another's do not, table by table (for a digest mismatch)."""
    first = next(iter(urls))
    out = []
    for t in digests[first].tables:
        if len({d.tables[[x.table for x in d.tables].index(t.table)].sha256 for d in digests.values()}) == 1:
            continue
        held: dict[str, set[str]] = {}
        for name, url in urls.items():
            async with await connect(url) as conn:
                held[name] = set(await table_rows(conn, t.table, "content"))
        for name in urls:
            if name != first:
                out.append(f"{t.table}: only in {first}: {sorted(held[first] - held[name])}; "
                           f"only in {name}: {sorted(held[name] - held[first])}")
    return "\n".join(out)
