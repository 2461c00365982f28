"""The API process's one LISTEN session (appview/listener.py), shared by the cache's freshness and the outbound
stream: exactly one per process, and when Postgres kills it the cache stops trusting its position at once, then
both users recover — a write after the reconnect reaches the cache and a live subscriber alike."""

from __future__ import annotations

import asyncio

import orjson
import psycopg

from appview.app import create_app
from appview.settings import AppviewSettings
from tests.appview.stream_kit import serve, subscribe
from tests.appview.world import ART, TRACK, World
from tests.ingester import events as ev


async def _until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


def _listeners(db_url: str) -> list[int]:
    with psycopg.connect(db_url, autocommit=True) as c:
        rows = c.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                         " AND pid <> pg_backend_pid() AND query LIKE 'SELECT coalesce(max(position), 0)%%'"
                         ).fetchall()
    return [r[0] for r in rows]


async def test_one_listener_survives_being_killed(world: World) -> None:
    app = create_app(AppviewSettings(response_cache=True), world.db_url)
    watcher = app.state.watcher
    async with serve(app) as base:
        await _until(lambda: asyncio.sleep(0, watcher.position is not None))
        assert len(_listeners(world.db_url)) == 1  # the cache and the stream share it
        async with subscribe(base) as ws:
            with psycopg.connect(world.db_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (_listeners(world.db_url)[0],))
            # the cache must not serve on a position it can no longer hear about…
            await _until(lambda: asyncio.sleep(0, watcher.position is None and watcher.failing))
            # …until the listener is back (one again, not one per user)
            await _until(lambda: asyncio.sleep(0, watcher.position is not None))
            assert len(_listeners(world.db_url)) == 1
            before = watcher.position
            world.put(ART, TRACK, ev.track("after the reconnect"), rkey="3kzzzzzzzzz22")
            await world.flush()
            await _until(lambda: asyncio.sleep(0, (watcher.position or 0) > before))
            async with asyncio.timeout(20):
                while True:
                    frame = orjson.loads(await ws.recv())
                    if (frame.get("commit") or {}).get("rkey") == "3kzzzzzzzzz22":
                        break
