"""The polite HTTP client of the backfill: 429 + Retry-After pauses the host, errors become short reasons,
listings page until their cursor runs out (or repeats)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from core.outbound import Outbound
from ingester.sources.repos import FetchError, RepoFetcher, retry_after_seconds
from tests.hostile.http_hosts import serve


def fetcher(handler: httpx.MockTransport, **kw: object) -> RepoFetcher:
    return RepoFetcher(client=Outbound(transport=handler), **kw)  # type: ignore[arg-type]


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("7") == 7.0
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 < (retry_after_seconds(format_datetime(later, usegmt=True)) or 0) <= 30
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


async def test_429_pauses_the_host_then_retries() -> None:
    seen: list[float] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(asyncio.get_running_loop().time())
        if len(seen) == 1:
            return httpx.Response(429, text="<html>Too Many Requests</html>", headers={"Retry-After": "1"})
        return httpx.Response(200, content=b"car bytes")

    f = fetcher(httpx.MockTransport(serve))
    assert await f.get_repo("https://pds.example", "did:plc:x") == b"car bytes"
    assert len(seen) == 2 and seen[1] - seen[0] >= 0.9
    assert f.hosts["pds.example"].rate_limited == 1


async def test_errors_become_reasons() -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        did = request.url.params["did"]
        if did == "gone":
            return httpx.Response(400, json={"error": "RepoNotFound", "message": "Could not find repo"})
        if did == "down":
            return httpx.Response(503, text="bad gateway")
        return httpx.Response(429, text="nope")  # no Retry-After: Tap's 10 s default, capped here

    f = fetcher(httpx.MockTransport(serve), attempts=2, retry_after_max_s=0.05)
    with pytest.raises(FetchError, match="^RepoNotFound$") as e:
        await f.get_repo("https://pds.example", "gone")
    assert not e.value.retryable
    with pytest.raises(FetchError, match="HTTP 503"):
        await f.get_repo("https://pds.example", "down")
    with pytest.raises(FetchError, match=r"rate limited \(429\)"):
        await f.get_repo("https://pds.example", "busy")


async def test_listings_page_and_stop_on_a_repeated_cursor() -> None:
    pages = {None: (["a", "b"], "c1"), "c1": (["c"], "c2"), "c2": (["d"], "c1")}  # c2 points back: a loop

    def serve(request: httpx.Request) -> httpx.Response:
        dids, cursor = pages[request.url.params.get("cursor")]
        return httpx.Response(200, json={"repos": [{"did": d, "head": "x", "rev": "r"} for d in dids],
                                         "cursor": cursor})

    f = fetcher(httpx.MockTransport(serve))
    assert [r.did async for r in f.list_repos("https://pds.example")] == ["a", "b", "c", "d"]
    assert [d async for d in f.list_repos_by_collection("https://relay.example", "fm.plyr.track")] == [
        "a", "b", "c", "d"]


async def test_per_host_concurrency_is_capped() -> None:
    active = peak = 0

    async def serve(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return httpx.Response(200, content=b"x")

    f = fetcher(httpx.MockTransport(serve), per_host=2, rate_per_host=0)
    await asyncio.gather(*(f.get_repo("https://pds.example", f"d{i}") for i in range(8)))
    assert peak == 2


async def test_relay_discovery_asks_once_per_exact_collection_and_unions() -> None:
    from ingester.backfill.discovery import from_relay, record_collections

    asked: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        collection = request.url.params["collection"]
        asked.append(collection)
        if collection == "fm.plyr.comment":
            return httpx.Response(502, text="collectiondir is down")
        dids = {"fm.plyr.track": ["did:plc:a", "did:plc:b"], "fm.plyr.like": ["did:plc:b", "did:plc:c"]}
        return httpx.Response(200, json={"repos": [{"did": d} for d in dids.get(collection, [])]})

    f = fetcher(httpx.MockTransport(serve), attempts=1)
    assert await from_relay(f, "https://relay.example") == {"did:plc:a", "did:plc:b", "did:plc:c"}
    assert sorted(asked) == sorted(record_collections()) and "*" not in "".join(asked)


# --- through the outbound guard, against hostile hosts on loopback -----------------------------------------

GET_REPO = "/xrpc/com.atproto.sync.getRepo"


async def test_an_oversized_repo_is_cut_off_while_streaming() -> None:
    async with serve() as host, RepoFetcher(allow_private=True, max_repo_bytes=1 << 20, attempts=3) as f:
        host.modes[GET_REPO] = "/flood?mib=256"
        with pytest.raises(FetchError) as e:
            await f.get_repo(host.url, "did:plc:x")
        assert e.value.reason == "too_large" and not e.value.retryable
        await asyncio.sleep(0.5)  # let the server notice the closed connection
        assert host.sent < 256 << 20 and len(host.hits) == 1  # stopped reading early, and not retried


async def test_a_dripping_pds_hits_the_total_deadline() -> None:
    async with serve() as host, RepoFetcher(allow_private=True, timeout_s=1.0, attempts=1) as f:
        host.modes[GET_REPO] = "/drip"
        with pytest.raises(FetchError) as e:
            await f.get_repo(host.url, "did:plc:x")
        assert e.value.reason == "timeout" and e.value.retryable


async def test_private_and_http_pds_urls_are_refused_without_the_switch() -> None:
    async with serve() as host, RepoFetcher(attempts=3) as f:
        port = host.port
        for pds in (host.url, f"https://127.0.0.1:{port}", f"https://localhost:{port}",
                    f"https://[::ffff:127.0.0.1]:{port}"):
            with pytest.raises(FetchError) as e:
                await f.get_repo(pds, "did:plc:x")
            assert e.value.reason == "refused" and not e.value.retryable
        assert host.hits == []


async def test_a_redirect_to_another_scheme_or_too_far_is_refused() -> None:
    async with serve() as host, RepoFetcher(allow_private=True, attempts=1) as f:
        host.modes[GET_REPO] = "/hop?to=https://127.0.0.1:1/x"
        with pytest.raises(FetchError) as e:
            await f.get_repo(host.url, "did:plc:x")
        assert e.value.reason == "refused"
        host.modes[GET_REPO] = "/loop"
        with pytest.raises(FetchError) as e:
            await f.get_repo(host.url, "did:plc:x")
        assert e.value.reason == "refused"


async def test_peer_error_text_never_becomes_the_reason() -> None:
    def serve_(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "<script>alert(1)</script> see http://evil", "message": "x"})

    f = fetcher(httpx.MockTransport(serve_), attempts=1)
    with pytest.raises(FetchError) as e:
        await f.get_repo("https://pds.example", "did:plc:x")
    assert e.value.reason == "HTTP 400"
