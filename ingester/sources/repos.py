"""Stage ①, pull side: `getRepo`, `listRepos` and `listReposByCollection` over HTTP, polite per host.

Each host gets a concurrency cap and a request-rate cap; a 429 pauses the whole host for its `Retry-After`
(seconds or an HTTP date; 10 s when absent, as Tap does: Bluesky's PDSes send a bare 429) and the request is
retried. Timeouts and 5xx are retried a few times with backoff; anything else is a :class:`FetchError`
carrying a short reason for the job table.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

log = structlog.get_logger(__name__)

DEFAULT_RETRY_AFTER_S = 10.0
MAX_REPO_BYTES = 1 << 30


class FetchError(Exception):
    def __init__(self, reason: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.status = reason, retryable, status


@dataclass(frozen=True, slots=True)
class ListedRepo:
    did: str
    rev: str | None = None
    active: bool = True
    status: str | None = None


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _Host:
    def __init__(self, concurrency: int, rate: float) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at = 0.0
        self.blocked_until = 0.0
        self.rate_limited = 0

    async def turn(self) -> None:
        """Wait for this host's pause (429) and for the next free slot of its rate."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            wait = max(self.blocked_until, self.next_at) - now
            if wait <= 0:
                self.next_at = max(now, self.next_at) + self.interval
                return
            await asyncio.sleep(wait)


class RepoFetcher:
    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        per_host: int = 4,
        rate_per_host: float = 10.0,
        timeout_s: float = 60.0,
        attempts: int = 3,
        retry_after_max_s: float = 120.0,
    ) -> None:
        self._own = client is None
        self.client = client or httpx.AsyncClient(follow_redirects=True, headers={"user-agent": "plyr-appview"})
        self.per_host, self.rate_per_host = per_host, rate_per_host
        self.timeout_s, self.attempts, self.retry_after_max_s = timeout_s, attempts, retry_after_max_s
        self.hosts: dict[str, _Host] = {}

    async def aclose(self) -> None:
        if self._own:
            await self.client.aclose()

    async def __aenter__(self) -> RepoFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _host(self, url: str) -> _Host:
        key = host_of(url)
        h = self.hosts.get(key)
        if h is None:
            h = self.hosts[key] = _Host(self.per_host, self.rate_per_host)
        return h

    async def get_repo(self, pds: str, did: str) -> bytes:
        resp = await self._get(pds, "com.atproto.sync.getRepo", {"did": did}, accept="application/vnd.ipld.car")
        return resp.content

    async def list_repos(self, host: str, limit: int = 1000) -> AsyncIterator[ListedRepo]:
        async for item in self._pages(host, "com.atproto.sync.listRepos", {"limit": limit}):
            if isinstance(item.get("did"), str):
                yield ListedRepo(item["did"], item.get("rev"), item.get("active", True) is not False,
                                 item.get("status"))

    async def list_repos_by_collection(self, relay: str, collection: str, limit: int = 2000) -> AsyncIterator[str]:
        params = {"collection": collection, "limit": limit}
        async for item in self._pages(relay, "com.atproto.sync.listReposByCollection", params):
            if isinstance(item.get("did"), str):
                yield item["did"]

    async def _pages(self, host: str, nsid: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            resp = await self._get(host, nsid, {**params, **({"cursor": cursor} if cursor else {})})
            try:
                body = resp.json()
            except ValueError as e:
                raise FetchError(f"{nsid}: response is not JSON") from e
            repos = body.get("repos") if isinstance(body, dict) else None
            if not isinstance(repos, list):
                raise FetchError(f"{nsid}: response has no repos list")
            for item in repos:
                if isinstance(item, dict):
                    yield item
            cursor = body.get("cursor")
            if not isinstance(cursor, str) or not cursor or not repos or cursor in seen:
                return  # done (a repeated cursor would loop forever)
            seen.add(cursor)

    async def _get(self, base: str, nsid: str, params: dict[str, Any], accept: str = "application/json"
                   ) -> httpx.Response:
        url = f"{base.rstrip('/')}/xrpc/{nsid}"
        host = self._host(base)
        last: FetchError | None = None
        for attempt in range(self.attempts):
            await host.turn()
            async with host.slots:
                try:
                    resp = await self.client.get(url, params=params, headers={"accept": accept},
                                                 timeout=self.timeout_s)
                except httpx.TimeoutException:
                    last = FetchError(f"timeout after {self.timeout_s:g}s", retryable=True)
                except httpx.HTTPError as e:
                    last = FetchError(f"{type(e).__name__}: {e}"[:200], retryable=True)
                else:
                    if resp.status_code == 200:
                        if len(resp.content) > MAX_REPO_BYTES:
                            raise FetchError("response too large")
                        return resp
                    last = self._error(resp, host)
                    if not last.retryable:
                        raise last
            log.info("fetch.retry", url=url, attempt=attempt + 1, reason=last.reason)
            if last.status != 429 and attempt + 1 < self.attempts:
                await asyncio.sleep(min(0.5 * 2 ** attempt, 10.0))
        assert last is not None
        raise last

    def _error(self, resp: httpx.Response, host: _Host) -> FetchError:
        status = resp.status_code
        if status == 429:
            wait = retry_after_seconds(resp.headers.get("retry-after"))
            wait = min(DEFAULT_RETRY_AFTER_S if wait is None else wait, self.retry_after_max_s)
            host.blocked_until = max(host.blocked_until, asyncio.get_running_loop().time() + wait)
            host.rate_limited += 1
            log.warning("fetch.rate_limited", host=str(resp.url.host), retry_after_s=wait)
            return FetchError("rate limited (429)", retryable=True, status=429)
        name = None
        try:
            body = resp.json()
            name = body.get("error") if isinstance(body, dict) else None
        except ValueError:
            pass
        detail = str(name)[:80] if name else f"HTTP {status}"
        return FetchError(detail, retryable=status >= 500 or status == 408, status=status)
