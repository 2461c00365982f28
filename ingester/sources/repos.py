"""Stage ①, pull side: `getRepo`, `listRepos` and `listReposByCollection` over HTTP, polite per host.

Each host gets a concurrency cap and a request-rate cap; a 429 pauses the whole host for its `Retry-After`
(seconds or an HTTP date; 10 s when absent, as Tap does: Bluesky's PDSes send a bare 429) and the request is
retried. Timeouts and 5xx are retried a few times with backoff; anything else is a :class:`FetchError`
carrying a short reason for the job table (a category or the peer's XRPC error name, never its free text).

Every request goes through the outbound guard (``core.outbound``): https to public addresses only (unless
OUTBOUND_ALLOW_PRIVATE), checked redirects, one deadline per request, and the body counted while it streams:
a getRepo larger than ``max_repo_bytes`` (GETREPO_MAX_BYTES) is cut off, never read whole and then measured.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import structlog

from core.outbound import Outbound, OutboundError, OutboundResponse
from core.retry import Backoff

log = structlog.get_logger(__name__)

DEFAULT_RETRY_AFTER_S = 10.0
# Default GETREPO_MAX_BYTES. The CAR is held in memory while it is walked, so the worst case is
# BACKFILL_CONCURRENCY × this; Bluesky's largest repos are a few hundred MB, plyr artists' far smaller.
MAX_REPO_BYTES = 256 << 20
MAX_LIST_BYTES = 16 << 20  # one listRepos page (1,000 entries) is ~200 KB
_ERROR_BODY_BYTES = 16 << 10
_XRPC_ERROR = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# Outbound failures worth another attempt (a refusal or an oversized answer would only repeat).
_RETRYABLE = frozenset({"timeout", "unreachable", "protocol"})


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
        client: Outbound | None = None,
        allow_private: bool = False,
        per_host: int = 4,
        rate_per_host: float = 10.0,
        timeout_s: float = 60.0,
        attempts: int = 3,
        retry_after_max_s: float = 120.0,
        max_repo_bytes: int = MAX_REPO_BYTES,
    ) -> None:
        self._own = client is None
        self.client = client or Outbound(allow_private=allow_private, per_host=max(per_host, 1))
        self.max_repo_bytes = max_repo_bytes
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
        """The repo's CAR; FetchError('too_large') as soon as it passes ``max_repo_bytes`` while streaming."""
        return await self._get(pds, "com.atproto.sync.getRepo", {"did": did}, accept="application/vnd.ipld.car",
                               max_bytes=self.max_repo_bytes)

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
            raw = await self._get(host, nsid, {**params, **({"cursor": cursor} if cursor else {})})
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
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

    async def _get(self, base: str, nsid: str, params: dict[str, Any], accept: str = "application/json",
                   max_bytes: int = MAX_LIST_BYTES) -> bytes:
        url = f"{base.rstrip('/')}/xrpc/{nsid}"
        host = self._host(base)
        backoff = Backoff(base_s=0.5, cap_s=10.0)
        last: FetchError | None = None
        for attempt in range(self.attempts):
            await host.turn()
            async with host.slots:
                try:
                    async with self.client.stream("GET", url, params=params, headers={"accept": accept},
                                                  timeout_s=self.timeout_s, max_bytes=max_bytes) as resp:
                        if resp.status == 200:
                            return await resp.read()
                        last = await self._error(resp, host)
                except OutboundError as e:
                    last = FetchError(e.reason, retryable=e.reason in _RETRYABLE)
                if not last.retryable:
                    raise last
            log.info("fetch.retry", url=url, attempt=attempt + 1, reason=last.reason)
            if last.status != 429 and attempt + 1 < self.attempts:
                await backoff.wait()
        assert last is not None
        raise last

    async def _error(self, resp: OutboundResponse, host: _Host) -> FetchError:
        status = resp.status
        if status == 429:
            wait = retry_after_seconds(resp.headers.get("retry-after"))
            wait = min(DEFAULT_RETRY_AFTER_S if wait is None else wait, self.retry_after_max_s)
            host.blocked_until = max(host.blocked_until, asyncio.get_running_loop().time() + wait)
            host.rate_limited += 1
            log.warning("fetch.rate_limited", host=host_of(resp.url), retry_after_s=wait)
            return FetchError("rate limited (429)", retryable=True, status=429)
        name = None
        try:
            body = orjson.loads(await resp.read_prefix(_ERROR_BODY_BYTES))
            name = body.get("error") if isinstance(body, dict) else None
        except (orjson.JSONDecodeError, OutboundError):
            pass
        # The peer's XRPC error name is kept when it is a plain identifier; free text never is.
        detail = name if isinstance(name, str) and _XRPC_ERROR.fullmatch(name) else f"HTTP {status}"
        return FetchError(detail, retryable=status >= 500 or status == 408, status=status)
