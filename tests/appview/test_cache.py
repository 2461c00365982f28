"""The anonymous response cache serves hits only while the projection position is unchanged."""

from __future__ import annotations

import asyncio

from tests.appview.world import ART, TRACK, World, client
from tests.ingester import events as ev


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.02)):
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_cache_hits_then_invalidates_on_projection(world: World) -> None:
    async with client(world.db_url, response_cache=True) as c:
        await _until(lambda: _ready(c))
        first = await c.get("/tracks/")
        again = await c.get("/tracks/")
        assert again.content == first.content
        authed = await c.get("/tracks/", headers={"Authorization": "Bearer x"})
        assert authed.status_code in (200, 401)  # never served from the anonymous cache
        world.put(ART, TRACK, ev.track("brand new"))
        await world.flush()

        async def fresh() -> bool:
            body = (await c.get("/tracks/")).json()
            return body["tracks"][0]["title"] == "brand new"

        await _until(fresh)


async def _ready(c) -> bool:  # type: ignore[no-untyped-def]
    return (await c.get("/health")).status_code == 200 and c._transport.app.state.watcher.position is not None
