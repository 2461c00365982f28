"""CORS: credentialed reads from allowed origins, preflights, hostile origins, the cache in between, /audio."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appview.app import create_app
from appview.cors import parse_origins
from appview.settings import AppviewSettings
from tests.appview.world import ART, TRACK, World, client
from tests.ingester import events as ev

DEV = "http://localhost:5173"
EVIL = "https://evil.example"


def _acao(r: httpx.Response) -> str | None:
    return r.headers.get("access-control-allow-origin")  # type: ignore[no-any-return]


async def test_credentialed_reads_echo_allowed_origins_only(world: World) -> None:
    async with client(world.db_url) as c:
        for origin in (DEV, "http://127.0.0.1:4173", "http://localhost", "http://[::1]:8000"):
            r = await c.get("/tracks/", headers={"Origin": origin})
            assert r.status_code == 200 and _acao(r) == origin
            assert r.headers["access-control-allow-credentials"] == "true"
            assert "Origin" in r.headers["vary"]
        for origin in (EVIL, "http://localhost.evil.example", "https://localhost:5173", "http://localhost:80x",
                       "null", "http://127.0.0.1.nip.io:80"):
            r = await c.get("/tracks/", headers={"Origin": origin})
            assert r.status_code == 200 and _acao(r) is None, origin
        # No Origin (curl, server-side rendering): no CORS headers needed, the answer is the same.
        assert _acao(await c.get("/tracks/")) is None


async def test_preflight_for_reads_with_the_frontends_headers(world: World) -> None:
    async with client(world.db_url) as c:
        r = await c.options("/users/fan.test/likes", headers={
            "Origin": DEV, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, content-type, atproto-proxy"})
        assert r.status_code == 200 and _acao(r) == DEV
        assert r.headers["access-control-allow-credentials"] == "true"
        assert set(r.headers["access-control-allow-methods"].split(", ")) == {"GET", "HEAD"}
        allowed = r.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed and "atproto-proxy" in allowed
        bad_origin = await c.options("/tracks/", headers={"Origin": EVIL, "Access-Control-Request-Method": "GET"})
        assert bad_origin.status_code == 400 and _acao(bad_origin) is None
        write = await c.options("/tracks/", headers={"Origin": DEV, "Access-Control-Request-Method": "POST"})
        assert write.status_code == 400  # a read-only service: no write preflight succeeds
        odd = await c.options("/tracks/", headers={"Origin": DEV, "Access-Control-Request-Method": "GET",
                                                   "Access-Control-Request-Headers": "x-made-up"})
        assert odd.status_code == 400


async def _cache_ready(c) -> bool:  # type: ignore[no-untyped-def]
    return (await c.get("/health")).status_code == 200 and c._transport.app.state.watcher.position is not None


async def test_cached_responses_carry_each_requesters_cors_headers(world: World) -> None:
    """The cache sits inside CORS: an entry filled for one origin is served to another with its own headers,
    to a disallowed origin with none, and repeated hits never accumulate headers."""
    async with client(world.db_url, response_cache=True) as c:
        for _ in range(500):
            if await _cache_ready(c):
                break
            await asyncio.sleep(0.02)
        first = await c.get("/tracks/top", headers={"Origin": DEV})
        assert _acao(first) == DEV
        seen = []
        for origin in ("http://127.0.0.1:3000", EVIL, None, DEV, EVIL, "http://localhost:9999") * 5:
            r = await c.get("/tracks/top", headers={"Origin": origin} if origin else {})
            assert r.content == first.content
            allowed = origin is not None and origin != EVIL
            assert _acao(r) == (origin if allowed else None), origin
            seen.append(len(r.headers.multi_items()))
        # The same request shape gets the same number of headers on the 1st and the 5th round.
        assert seen[:6] == seen[-6:]
        assert first.headers["vary"].count("Origin") == 1


def _raw_cid(data: bytes) -> str:
    digest = b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(digest).decode().lower().rstrip("=")


async def _mirrored(world: World, tmp_path: Path, data: bytes) -> str:
    """A track whose audio blob is in the local mirror under `tmp_path`; returns the blob's CID."""
    cid = _raw_cid(data)
    blob_dir = tmp_path / "blobs" / cid[-2:]
    blob_dir.mkdir(parents=True)
    (blob_dir / cid).write_bytes(data)
    world.put(ART, TRACK, ev.track("mirrored", audioBlob={"$type": "blob", "ref": {"$link": cid},
                                                          "mimeType": "audio/mpeg", "size": len(data)}))
    await world.flush()
    from core.db.connect import connect
    async with await connect(world.db_url) as conn:
        await conn.execute("INSERT INTO blob (cid, state, size, mime, store) VALUES (%s, 'mirrored', %s,"
                           " 'audio/mpeg', 'local')", (cid, len(data)))
        await conn.commit()
    return cid


async def test_audio_range_headers_are_exposed(world: World, tmp_path: Path) -> None:
    data = bytes(range(256)) * 64
    cid = await _mirrored(world, tmp_path, data)
    async with client(world.db_url, APPVIEW_DATA_DIR=str(tmp_path)) as c:
        r = await c.get(f"/audio/{cid}", headers={"Origin": DEV, "Range": "bytes=10-19"})
        assert r.status_code == 206 and r.content == data[10:20] and _acao(r) == DEV
        exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
        assert {"content-range", "accept-ranges", "content-length"} <= exposed
        pre = await c.options(f"/audio/{cid}", headers={"Origin": DEV, "Access-Control-Request-Method": "GET",
                                                        "Access-Control-Request-Headers": "range"})
        assert pre.status_code == 200 and _acao(pre) == DEV


async def test_a_listener_that_stops_reading_audio_holds_no_database_connection(world: World,
                                                                                 tmp_path: Path) -> None:
    """/audio answers from one lookup: its pool connection goes back before the body streams, so listeners
    that read slowly (or stall) cannot take the pool from every other request. Pool of one: the feed must
    still answer while an /audio body is stuck mid-send."""
    cid = await _mirrored(world, tmp_path, bytes(range(256)) * 4096)
    app = create_app(AppviewSettings(response_cache=False, db_pool_min=1, db_pool_max=1,
                                     APPVIEW_DATA_DIR=str(tmp_path)), world.db_url)
    streaming, release = asyncio.Event(), asyncio.Event()

    async def receive() -> dict[str, Any]:
        await release.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            streaming.set()
            await release.wait()  # the listener stops reading

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": f"/audio/{cid}", "raw_path": f"/audio/{cid}".encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test")], "client": ("127.0.0.1", 50000), "server": ("test", 80)}
    async with app.router.lifespan_context(app):
        audio = asyncio.create_task(app(scope, receive, send))
        try:
            await asyncio.wait_for(streaming.wait(), 10)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
                r = await asyncio.wait_for(c.get("/tracks/"), 5)
            assert r.status_code == 200 and r.json()["tracks"]
        finally:
            release.set()
            await asyncio.wait_for(audio, 10)


async def test_production_origin_setting(world: World) -> None:
    async with client(world.db_url, cors_origins="https://plyr.fm, ^https://[a-z0-9-]+\\.plyr-preview\\.dev$") as c:
        assert _acao(await c.get("/stats", headers={"Origin": "https://plyr.fm"})) == "https://plyr.fm"
        assert _acao(await c.get("/stats", headers={"Origin": "https://pr-1.plyr-preview.dev"})) \
            == "https://pr-1.plyr-preview.dev"
        for origin in ("https://evil.plyr.fm", "http://plyr.fm", "https://plyr.fm.evil.example", DEV,
                       "https://a.b.plyr-preview.dev"):
            assert _acao(await c.get("/stats", headers={"Origin": origin})) is None, origin
    async with client(world.db_url, cors_origins="") as c:
        r = await c.options("/stats", headers={"Origin": DEV, "Access-Control-Request-Method": "GET"})
        assert r.status_code == 405 and _acao(r) is None  # CORS off


@pytest.mark.parametrize("bad", ["*", "^(unclosed", "plyr.fm", "https://plyr.fm/path", "ftp://x"])
def test_bad_settings_fail_at_start(bad: str) -> None:
    with pytest.raises(ValueError, match="CORS_ORIGINS"):
        parse_origins(bad)


@given(st.text(max_size=60))
def test_parsing_any_setting_raises_only_value_error(setting: str) -> None:
    try:
        parse_origins(setting)
    except ValueError:
        pass


@given(st.text(max_size=80))
def test_default_policy_matches_only_local_http_origins(origin: str) -> None:
    import re

    from appview.settings import AppviewSettings
    policy = parse_origins(AppviewSettings().cors_origins)
    assert policy.regex is not None
    if re.fullmatch(policy.regex, origin):
        assert re.fullmatch(r"http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?", origin)
