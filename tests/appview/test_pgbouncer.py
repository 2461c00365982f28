"""The API behind a real PgBouncer in transaction mode (`DB_PREPARED_STATEMENTS=false`, LISTEN on a direct
`DATABASE_LISTEN_URL`): every surface answers as it does on a direct connection, concurrently and repeatedly
(so psycopg would have prepared its statements by now, and transactions hop between server sessions), and the
sessions it is handed all read in UTC although the bouncer's server sessions start in another time zone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from appview.app import create_app
from appview.settings import AppviewSettings
from tests.appview.pgbouncer_kit import pgbouncer
from tests.appview.world import World

PATHS = ["/tracks/?limit=50", "/tracks/top", "/search/?q=first", "/stats", "/albums/", "/activity/",
         "/xrpc/fm.plyr.feed.getLatest", "/xrpc/fm.plyr.search.searchTracks?q=light",
         "/xrpc/fm.plyr.sync.getEvents?limit=5", "/status", "/ready", "/"]


async def _answers(c: httpx.AsyncClient, track_id: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in [*PATHS, f"/tracks/{track_id}", f"/tracks/{track_id}/comments"]:
        r = await c.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        out[path] = r.text if path == "/" else r.json()
    return out


def _stable(answers: dict[str, Any]) -> dict[str, Any]:
    # what legitimately differs between two reads: clocks, and the status page's own timings
    return {k: v for k, v in answers.items() if k not in ("/", "/status", "/ready", "/stats")}


async def test_every_surface_through_pgbouncer_transaction_mode(world: World, pg_server_url: str) -> None:
    db = world.db_url.rsplit("/", 1)[1]
    settings = AppviewSettings(response_cache=False, db_prepared_statements=False, db_pool_max=8,
                               database_listen_url=world.db_url)
    direct = create_app(settings, world.db_url)
    async with direct.router.lifespan_context(direct):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=direct), base_url="http://t") as c:
            track_id = (await c.get("/tracks/")).json()["tracks"][0]["id"]
            expected = _stable(await _answers(c, track_id))

    with pgbouncer(pg_server_url) as template:
        app = create_app(settings, template.format(db=db))
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
                # 8 clients over 3 server sessions, each path well past psycopg's prepare threshold (5)
                rounds = await asyncio.gather(*(_answers(c, track_id) for _ in range(8)))
                rounds += [await _answers(c, track_id) for _ in range(3)]
                for answers in rounds:
                    assert _stable(answers) == expected
                # The listener (direct) works: the cache's position is known, the stream hub is live.
                assert app.state.watcher.position is not None

            async def zone() -> str:
                async with app.state.pool.connection() as conn:
                    row = await (await conn.execute("SELECT current_setting('TimeZone')")).fetchone()
                    await asyncio.sleep(0.01)
                    return str(row[0]) if row else ""

            assert set(await asyncio.gather(*(zone() for _ in range(40)))) == {"UTC"}
