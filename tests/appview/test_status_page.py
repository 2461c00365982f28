"""The status page at `/` (self-contained HTML, bounded queries, escaped network text) and the offline docs."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool

from appview.pages.status_data import PlayabilityCache, ingest_window, tid_time
from core.db.connect import connect
from core.db.urls import libpq_url
from tests.appview.world import World, client, tid

HOSTILE = '<script>alert("x")</script><img src=https://evil.example/x.png>'


async def test_status_page_renders_every_section_offline(world: World) -> None:
    async with await connect(world.db_url) as conn:
        await conn.execute("INSERT INTO source_cursor (source, cursor) VALUES (%s, 42)", (HOSTILE,))
        await conn.execute("INSERT INTO backfill_job (did, status, reason, error, attempts, pds) VALUES"
                           " ('did:plc:failedaaaaaaaaaaaaaaaaaa', 'failed', 'discovery', %s, 3, %s),"
                           " ('did:plc:pendingaaaaaaaaaaaaaaaaa', 'pending', 'discovery', NULL, 0, NULL)",
                           (HOSTILE, HOSTILE))
        await conn.commit()
    async with client(world.db_url) as c:
        for _ in range(200):  # the playability section fills in from a background count
            r = await c.get("/")
            if "Being counted" not in r.text:
                break
            await asyncio.sleep(0.05)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in r.headers["content-security-policy"]
        body = r.text
        for section in ('id="log"', 'id="sources"', 'id="ingest"', 'id="backfill"', 'id="playability"',
                        'id="rows"', "<svg"):
            assert section in body, section
        for link in ("/docs", "/openapi.json", "/status", "/metrics"):
            assert f'href="{link}"' in body
        assert "<script" not in body and "evil.example/x.png>" not in body  # network text is escaped
        assert "&lt;script&gt;" in body
        # Nothing is loaded from anywhere: no src= at all, and every href is a local path.
        assert " src=" not in body.replace("&lt;img src=", "")
        assert all(h.startswith("/") for h in re.findall(r'href="([^"]*)"', body))
        assert "Unavailable" not in body
        # The world's events arrived just now: the chart counts them.
        assert re.search(r"([\d,]+)\+? record events in the last hour", body).group(1) != "0"  # type: ignore[union-attr]


async def test_a_failing_section_leaves_the_rest(world: World) -> None:
    async with await connect(world.db_url) as conn:
        await conn.execute("ALTER TABLE backfill_job RENAME TO backfill_job_gone")
        await conn.commit()
    async with client(world.db_url) as c:
        body = (await c.get("/")).text
        assert "Unavailable this time (slow or failing): status" in body
        assert 'id="ingest"' in body and 'id="rows"' in body


async def test_playability_is_counted_in_the_background(world: World) -> None:
    cache = PlayabilityCache()
    async with AsyncConnectionPool(libpq_url(world.db_url), min_size=1, max_size=2, open=False) as pool:
        for _ in range(200):  # no timing assumption: poll until the background count lands
            value, at = await cache.get(pool, ("audio.plyr.fm",))
            if value is not None:
                break
            await asyncio.sleep(0.05)
        assert value == {"mirrored": 0, "pds_only": 0, "url_only": 3, "dead": 0} and at is not None
        again, at2 = await cache.get(pool, ("audio.plyr.fm",))
        assert again == value and at2 == at  # fresh: not recounted
        await cache.aclose()


async def test_ingest_window_is_bounded(world: World) -> None:
    async with await connect(world.db_url) as conn:
        full = await ingest_window(conn)
        assert full.events > 5 and not full.truncated
        capped = await ingest_window(conn, cap=5)
        assert capped.events == 5 and capped.truncated


def _encode_tid(us: int, clock: int = 7) -> str:
    v, out = (us << 10) | clock, ""
    for _ in range(13):
        out = "234567abcdefghijklmnopqrstuvwxyz"[v & 31] + out
        v >>= 5
    return out


def test_tid_time() -> None:
    when = datetime(2026, 12, 2, 17, 30, 1, 123456, tzinfo=UTC)
    us = int(when.timestamp()) * 1_000_000 + when.microsecond
    assert tid_time(_encode_tid(us)) == when
    assert tid_time(tid(1)) is not None
    for bad in (None, "", "3jzfcijpj2z2", "zzzzzzzzzzzzz", "3jzfcijpj2z2A", "3jzfcijpj2z2a1"):
        assert tid_time(bad) is None


@given(st.text(max_size=20))
def test_tid_time_never_raises(s: str) -> None:
    t = tid_time(s)
    assert t is None or t.tzinfo is not None


async def test_docs_are_served_without_a_cdn(world: World) -> None:
    async with client(world.db_url) as c:
        assert (await c.get("/redoc")).status_code == 404  # its bundle would load a logo from a CDN
        for path in ("/docs",):
            page = await c.get(path)
            assert page.status_code == 200
            urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(
                r"""url: ?['"]([^'"]+)['"]""", page.text)
            assert urls and all(u.startswith("/") for u in urls), urls
            assert "cdn" not in page.text.lower() and "fonts.googleapis" not in page.text
        js = await c.get("/docs-assets/swagger-ui-bundle.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 100_000
        assert (await c.get("/docs-assets/swagger-ui.css")).status_code == 200
        assert (await c.get("/docs-assets/../pyproject.toml")).status_code == 404
        spec = (await c.get("/openapi.json")).json()
        assert "/lists/by-uri" in spec["paths"] and "/tracks/tags" in spec["paths"] and "/" not in spec["paths"]
