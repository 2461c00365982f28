"""Read replicas against a real streaming replica (a second Postgres from `pg_basebackup -R`, tests/appview/
replica_kit.py): reads are served from it once replayed; its lag shows in /status and /metrics; paused replay
never lets the response cache store an answer under a position newer than its data (even when requests
alternate between a lagging and a current replica); a replica that is down or hangs does not stall requests."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from appview.cache import ResponseCache
from core.db.migrate import upgrade
from tests.appview.replica_kit import Cluster, missing_binaries
from tests.appview.world import ART, TRACK, World, client
from tests.ingester import events as ev

DB = "appview"
DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    why = missing_binaries()
    if why:
        pytest.skip(why)
    c = Cluster()
    try:
        c.start(DB)
        upgrade(c.primary.url(DB))
        yield c
    except BaseException:
        print(c.logs())
        raise
    finally:
        c.close()


@pytest.fixture(scope="module")
def world(cluster: Cluster) -> World:
    w = World(cluster.primary.url(DB))
    w.actor(ART, "artist.test")
    return w


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.05)


def position(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(position), 0) FROM projection_cursor").fetchone()
        assert row is not None
        return int(row[0])


def replica_sql(cluster: Cluster, sql: str) -> None:
    with psycopg.connect(cluster.replica.url(DB), autocommit=True) as conn:
        conn.execute(sql)


def titles(body: dict[str, Any]) -> set[str]:
    return {t["title"] for t in body["tracks"]}


def reads(target: str) -> float:
    return REGISTRY.get_sample_value("appview_reads_total", {"target": target}) or 0.0


def the_cache(c: httpx.AsyncClient) -> ResponseCache:
    node: Any = c._transport.app.middleware_stack  # type: ignore[attr-defined]
    while node is not None and not isinstance(node, ResponseCache):
        node = getattr(node, "app", None)
    assert node is not None, "no response cache in the middleware stack"
    return node


async def replica_status(c: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await c.get("/status")
    assert r.status_code == 200
    return {x["name"]: x for x in r.json()["replicas"]}


async def _pool_gauge(c: Any, pool: str) -> bool | None:
    text = (await c.get("/metrics")).text
    return True if f'appview_db_pool_max{{pool="{pool}"}}' in text and 'pool="primary"' in text else None


async def test_reads_are_served_by_the_replica_and_its_lag_is_shown(cluster: Cluster, world: World) -> None:
    world.put(ART, TRACK, ev.track("replayed track"))
    await world.flush()
    async with client(world.db_url, database_read_url=cluster.replica.url(DB), database_read_poll_s=0.2,
                      response_cache=True, response_cache_stale_s=0) as c:
        await until(lambda: _serving(c, "replica-1"), "replica-1 serving")
        before, primary_before = reads("replica-1"), reads("primary")
        body = await until(lambda: _tracks_with(c, "replayed track"), "the replayed track served")
        assert "replayed track" in titles(body)
        assert reads("replica-1") > before and reads("primary") == primary_before

        # Caught up and idle: no lag, in bytes, seconds or events (not "seconds since the last transaction").
        async def caught_up() -> dict[str, Any] | None:
            s = (await replica_status(c))["replica-1"]
            return s if s["lag_bytes"] == 0 and s["lag_seconds"] == 0 and s["lag_events"] == 0 else None

        s = await until(caught_up, "replica-1 caught up with zero lag")
        assert s["up"] and s["serving"] and s["in_recovery"] and s["replay_paused"] is False
        assert s["projector_position"] == position(cluster.primary.url(DB))
        metrics = (await c.get("/metrics")).text
        assert 'appview_replica_lag_seconds{replica="replica-1"} 0.0' in metrics
        assert 'appview_replica_up{replica="replica-1"} 1.0' in metrics
        # The replica's pool is in the pool gauges beside the primary's (updated every second).
        await until(lambda: _pool_gauge(c, "replica-1"), "replica-1's pool in appview_db_pool_connections")
        page = (await c.get("/")).text
        assert 'id="replicas"' in page and "replica-1" in page and "serving" in page


async def test_paused_replay_keeps_the_cache_honest_between_a_lagging_and_a_current_replica(
        cluster: Cluster, world: World) -> None:
    primary_url = cluster.primary.url(DB)
    # replica-1 is the real standby, paused below; replica-2 is the primary itself (current at every moment):
    # requests alternate between a stale and a fresh source.
    read_urls = f"{cluster.replica.url(DB)},{primary_url}"
    world.put(ART, TRACK, ev.track("before the pause"))
    await world.flush()
    async with client(world.db_url, database_read_url=read_urls, database_read_poll_s=0.2, response_cache=True,
                      response_cache_stale_s=0, response_cache_ttl_s=3600, database_read_max_lag_s=3) as c:
        await until(lambda: _serving(c, "replica-1", "replica-2"), "both replicas serving")
        await until(lambda: _tracks_with(c, "before the pause"), "the first track served")
        replica_sql(cluster, "SELECT pg_wal_replay_pause()")
        try:
            world.put(ART, TRACK, ev.track("written while paused"))
            await world.flush()
            new_at = position(primary_url)
            assert position(cluster.replica.url(DB)) < new_at
            cache = the_cache(c)
            seen_both = set()
            for _ in range(40):
                r = await c.get("/tracks/")
                assert r.status_code == 200
                fresh = "written while paused" in titles(r.json())
                seen_both.add(fresh)
                stored = cache.entries.get(("/tracks/", b""))
                assert stored is not None
                stored_fresh = b"written while paused" in stored[3]
                # The invariant: an answer without the new track is never stored at (or past) its position.
                assert stored_fresh or stored[0] < new_at, (stored[0], new_at)
                await asyncio.sleep(0.02)
            assert seen_both == {True, False}, "requests should have been spread over both sources"

            async def lag_shown() -> dict[str, Any] | None:
                s = (await replica_status(c))["replica-1"]
                return s if (s["replay_paused"] and s["lag_events"] and s["lag_bytes"] and s["lag_seconds"]) \
                    else None

            s = await until(lag_shown, "the paused replica's lag in /status")
            assert s["lag_events"] >= 1 and s["lag_bytes"] > 0 and s["lag_seconds"] > 0
            assert (REGISTRY.get_sample_value("appview_replica_lag_bytes", {"replica": "replica-1"}) or 0) > 0
            assert (REGISTRY.get_sample_value("appview_replica_lag_events", {"replica": "replica-1"}) or 0) >= 1
            # A lagging replica is still honest about itself: it is the primary-as-replica that is current.
            assert (await replica_status(c))["replica-2"]["lag_events"] == 0

            # Past DATABASE_READ_MAX_LAG_S it is no longer read from: every answer is then the current one.
            async def out_of_use() -> dict[str, Any] | None:
                one = (await replica_status(c))["replica-1"]
                return one if one["up"] and not one["serving"] else None

            await until(out_of_use, "the paused replica out of use once too far behind")
            for _ in range(6):
                assert "written while paused" in titles((await c.get("/tracks/")).json())
            assert "behind" in (await c.get("/health")).json()["replicas"]["replica-1"]
        finally:
            replica_sql(cluster, "SELECT pg_wal_replay_resume()")
        # Once replayed, every answer is the new one: nothing stale was cached under a position it does not have.
        await until(lambda: _tracks_with(c, "written while paused"), "the new track after resume")
        for _ in range(10):
            assert "written while paused" in titles((await c.get("/tracks/")).json())


async def test_a_dead_or_hung_replica_does_not_stall_requests(cluster: Cluster, world: World) -> None:
    # A "replica" that accepts TCP and never answers (the hostile case of a hung host), and the real one.
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    hung_url = f"postgresql://postgres@127.0.0.1:{hung.getsockname()[1]}/{DB}"
    timeout_s = 1.0
    world.put(ART, TRACK, ev.track("before the outage"))
    await world.flush()
    try:
        async with client(world.db_url, database_read_url=f"{hung_url},{cluster.replica.url(DB)}",
                          database_read_poll_s=0.2, database_read_timeout_s=timeout_s) as c:
            await until(lambda: _serving(c, "replica-2"), "the real replica serving")
            await until(lambda: _tracks_with(c, "before the outage"), "the track replayed")

            async def hung_seen() -> dict[str, Any] | None:
                one = (await replica_status(c))["replica-1"]
                return one if one["error"] not in (None, "not checked yet") else None

            one = await until(hung_seen, "the hung replica's failure in /status")
            assert not one["up"] and not one["serving"] and "timeout" in one["error"].lower(), one
            for _ in range(10):  # the hung one is never chosen
                r = await asyncio.wait_for(c.get("/tracks/"), 10 * timeout_s)
                assert r.status_code == 200 and "before the outage" in titles(r.json())

            cluster.replica.stop("immediate")
            world.put(ART, TRACK, ev.track("written with replicas down"))
            await world.flush()
            # Every request answers, from the primary, within a bound; none waits out a dead replica's pool.
            for _ in range(20):
                r = await asyncio.wait_for(c.get("/tracks/"), 10 * timeout_s)
                assert r.status_code == 200, r.text
            await until(lambda: _tracks_with(c, "written with replicas down"), "the primary serving")
            s = await until(lambda: _all_down(c), "both replicas shown down")
            assert all(x["error"] for x in s.values())
            health = await c.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "degraded"
            assert set(health.json()["replicas"]) == {"replica-1", "replica-2"}
            assert (await c.get("/ready")).status_code == 200  # replicas never make the API unready
            before = reads("primary")
            await c.get("/tracks/")
            assert reads("primary") == before + 1

            cluster.replica.start()  # it comes back: its pool is renewed and it serves again
            await until(lambda: _serving(c, "replica-2"), "the real replica serving again", timeout=60)
            before = reads("replica-2")
            body = await until(lambda: _tracks_with(c, "written with replicas down"), "read from it again")
            assert body and reads("replica-2") > before
    finally:
        hung.close()
        if not _running(cluster):
            cluster.replica.start()


def _running(cluster: Cluster) -> bool:
    try:
        psycopg.connect(cluster.replica.url(DB), connect_timeout=2).close()
        return True
    except psycopg.OperationalError:
        return False


async def _serving(c: httpx.AsyncClient, *names: str) -> bool:
    s = await replica_status(c)
    return all(s[n]["serving"] for n in names)


async def _all_down(c: httpx.AsyncClient) -> dict[str, dict[str, Any]] | None:
    s = await replica_status(c)
    return s if not any(x["up"] for x in s.values()) else None


async def _tracks_with(c: httpx.AsyncClient, title: str) -> dict[str, Any] | None:
    r = await c.get("/tracks/")
    body: dict[str, Any] = r.json()
    return body if r.status_code == 200 and title in titles(body) else None
