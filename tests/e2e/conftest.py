"""End-to-end fixtures: the real reference PDS + PLC, and our ingester following it."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from core.db.connect import connect
from ingester.service import Ingester
from ingester.settings import IngesterSettings
from tests.localnet.peer import Localnet, Xrpc

pytestmark = pytest.mark.e2e
# Every XRPC answer the e2e tests get is checked against its lexicon, whatever the caller's environment says
# (the root conftest only sets a default): a mismatch is a 500 that fails the test.
os.environ["XRPC_VALIDATE_OUTPUT"] = "true"


@pytest.fixture(scope="session")
def localnet() -> Iterator[Localnet]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    net = Localnet()
    net.start()
    yield net
    net.stop()


@pytest.fixture
async def xrpc(localnet: Localnet) -> AsyncIterator[Xrpc]:
    client = Xrpc(localnet.pds_url, localnet.info.get("adminPassword", "admin-pass"))
    yield client
    await client.aclose()


def ingester_settings(db_url: str, localnet: Localnet, **overrides: Any) -> IngesterSettings:
    # No labelers by default: the tests are offline (labels have their own e2e test with a local labeler).
    return IngesterSettings(database_url=db_url, firehose_hosts=localnet.ws_url, plc_url=localnet.plc_url,
                            ingest_batch_max=500, **({"labelers": ""} | overrides))


class RunningIngester:
    def __init__(self, settings: IngesterSettings, url: str) -> None:
        self.settings, self.url = settings, url
        self.ingester: Ingester | None = None
        self.task: asyncio.Task[None] | None = None
        self.stop_event = asyncio.Event()

    async def start(self) -> Ingester:
        self.stop_event = asyncio.Event()
        self.ingester = Ingester(self.settings, self.url)
        self.task = asyncio.create_task(self.ingester.run(self.stop_event))
        for _ in range(600):  # generous: CI machines are shared and slow to start websockets under load
            if self.ingester.sources and self.ingester.sources[0].connected.is_set():
                return self.ingester
            await asyncio.sleep(0.05)
        died = self.task.exception() if self.task.done() else None
        states = [(x.name, x.connected.is_set()) for x in self.ingester.sources]
        raise TimeoutError(f"ingester did not connect to its source (ingester task ended: {died!r}; {states})")

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task:
            await asyncio.wait_for(self.task, 15)


@pytest.fixture
async def ingester(db_url: str, localnet: Localnet) -> AsyncIterator[RunningIngester]:
    running = RunningIngester(ingester_settings(db_url, localnet), db_url)
    await running.start()
    yield running
    await running.stop()


Query = Callable[..., Awaitable[list[tuple[Any, ...]]]]


@pytest.fixture
async def q(db_url: str) -> AsyncIterator[Query]:
    conn = await connect(db_url, autocommit=True)

    async def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with conn.cursor() as cur:
            await cur.execute(sql, params)
            return await cur.fetchall()

    yield query
    await conn.close()


async def eventually(q: Query, sql: str, expected: Any, *params: Any, timeout: float = 15.0) -> None:
    """Poll until the projection shows `expected` (ingest is asynchronous by design)."""
    deadline = asyncio.get_running_loop().time() + timeout
    rows: Any = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            rows = await q(sql, *params)
        except psycopg.Error:
            rows = None
        if rows == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{sql!r}: expected {expected!r}, last saw {rows!r}")


def wav_bytes(seconds: float = 0.2, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        w.writeframes(bytes(int(128 + 100 * ((i // 20) % 2)) for i in range(int(seconds * rate))))
    return buf.getvalue()
