"""A real browser reads the API from another origin with `credentials: 'include'`, as plyr.fm's frontend
does: CORS proven the way chromium enforces it (and a disallowed origin refused), plus the status page and
Swagger UI rendered with nothing fetched beyond localhost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser
LOCAL = {"127.0.0.1", "localhost"}


def _watch(page: Any) -> list[str]:
    """Every URL the page requests that is not on this machine (must stay empty)."""
    outside: list[str] = []
    page.on("request", lambda req: outside.append(req.url)
            if urlsplit(req.url).scheme in ("http", "https", "ws", "wss")
            and urlsplit(req.url).hostname not in LOCAL else None)
    return outside


async def _run_site(browser: Any, site: str, api: str) -> dict[str, Any]:
    page = await browser.new_page()
    outside = _watch(page)
    await page.goto(f"{site}/index.html?api={api}")
    await page.wait_for_selector("body[data-done='1']", timeout=30_000)
    out: dict[str, Any] = json.loads(await page.text_content("#out") or "{}")
    out["_dom"] = {i: await page.text_content(f"#{i}") for i in ("top", "likes", "me", "tags", "authed")}
    out["_titles"] = await page.locator("#titles li").all_text_contents()
    assert outside == []
    await page.close()
    return out


async def test_allowed_origin_reads_with_credentials(api_server: Any, static_site: Any, browser: Any) -> None:
    site = static_site("localhost")
    api = api_server(cors_origins=site)  # exactly this origin, as a production deployment lists https://plyr.fm
    await browser.add_cookies([{"name": "session_id", "value": "a-plyr-cookie", "url": api}])
    out = await _run_site(browser, site, api)
    assert out["tracks"]["status"] == 200 and out["_titles"] == ["second wind", "first light"]  # adult one hidden
    assert out["top"]["status"] == 200 and out["_dom"]["top"].startswith("first light (2)")
    assert out["likes"]["status"] == 200 and out["_dom"]["likes"] == "2 liked: second wind, first light"
    assert out["_dom"]["me"] == "401 not authenticated - login required"  # readable: plyr's body, CORS headers on
    assert out["_dom"]["tags"] == "401 []".replace("401", "200")
    assert out["authed"]["status"] == 401  # the preflight for Authorization passed; the bad token is refused


async def test_disallowed_origin_is_blocked_by_the_browser(api_server: Any, static_site: Any, browser: Any) -> None:
    allowed = static_site("localhost")
    other = static_site("127.0.0.1")  # a different origin (host and port) than the one allowed
    api = api_server(cors_origins=allowed)
    out = await _run_site(browser, other, api)
    for key in ("tracks", "top", "likes", "me", "tags", "authed"):
        assert "error" in out[key] and "Failed to fetch" in out[key]["error"], (key, out[key])
    assert out["_titles"] == [] and out["_dom"]["me"].startswith("blocked")


async def test_default_setting_lets_any_local_dev_server_read(api_server: Any, static_site: Any,
                                                               browser: Any) -> None:
    site = static_site("127.0.0.1")
    api = api_server()  # the default CORS_ORIGINS: http://localhost / 127.0.0.1 / [::1], any port
    out = await _run_site(browser, site, api)
    assert out["tracks"]["status"] == 200 and len(out["_titles"]) == 2


async def test_status_page_and_swagger_ui_render_offline(api_server: Any, browser: Any, tmp_path: Path) -> None:
    api = api_server()
    page = await browser.new_page()
    outside = _watch(page)
    failed: list[str] = []
    page.on("requestfailed", lambda req: failed.append(req.url))
    await page.goto(f"{api}/")
    for _ in range(100):  # playability is counted in the background: reload until it is in
        if await page.locator("#playability table").count():
            break
        await page.wait_for_timeout(100)
        await page.reload()
    assert await page.locator("#playability table").count() == 1
    assert await page.locator("#sources").count() == 1 and await page.locator("#ingest svg rect").count() == 60
    assert "record events in the last hour" in (await page.text_content("#ingest") or "")
    await page.screenshot(path=str(tmp_path / "status.png"), full_page=True)
    await page.click("a[href='/docs']")
    await page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "plyr-appview" in (await page.text_content(".swagger-ui .info .title") or "")
    await page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = await page.locator(".opblock-summary-path").all_text_contents()
    assert any("/lists/by-uri" in p for p in paths) and any("/tracks/tags" in p for p in paths)
    await page.screenshot(path=str(tmp_path / "docs.png"))
    assert outside == [] and failed == []
