"""THE way to make an outbound HTTP request (PLC, did:web, handles, getRepo, listRepos, getBlob, labelers).

Everything a DID document, a handle or a record names is hostile until proven otherwise, so every request:

* goes only to https and to global unicast addresses, checked after DNS on the address we then connect to
  (``core.outbound_net``), IP literals up front (``core.outbound_policy``);
* follows at most ``max_redirects`` redirects by hand, each hop checked again, never changing scheme;
* runs under ONE deadline (``asyncio.timeout``) covering connect, every hop, headers *and* body, so a host
  dripping a byte at a time cannot stretch it (the clock starts when the request gets its per-host slot);
* reads at most ``max_bytes`` of body, counted while streaming (a declared larger ``Content-Length`` is
  refused before reading);
* waits for a per-host slot (at most ``per_host`` requests to one host at a time, from this client).

``OUTBOUND_ALLOW_PRIVATE=true`` (local development and the tests' local PDS only) lifts the address rules
and allows plain http. Failures are :class:`OutboundError` with a ``reason`` category that is safe to store
and show; the peer's own error text never leaves this module.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
import orjson
import structlog
from prometheus_client import Counter

from core.outbound_net import GuardedTransport, Resolver
from core.outbound_policy import (
    REASONS,
    OutboundError,
    OutboundReason,
    RefusedAddress,
    check_redirect,
    check_url,
    parse_url,
    public_ip,
)

__all__ = ["REASONS", "Body", "Outbound", "OutboundError", "OutboundReason", "OutboundResponse", "RefusedAddress",
           "check_url", "public_ip", "reason_of"]

log = structlog.get_logger(__name__)

OUTBOUND_FAILURES = Counter("outbound_failures_total", "Outbound requests that failed, by reason", ["reason"])

REDIRECTS = frozenset({301, 302, 303, 307, 308})
Params = Mapping[str, str | int | float | bool | None]


def reason_of(e: BaseException) -> OutboundReason:
    """The category of an exception raised by a request (anything unknown is `protocol`)."""
    if isinstance(e, OutboundError):
        return e.reason
    if isinstance(e, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(e, httpx.ConnectError | httpx.NetworkError | OSError):
        return "unreachable"
    return "protocol"


class OutboundResponse:
    """A response whose body can be read only within the request's byte cap and deadline."""

    def __init__(self, resp: httpx.Response, max_bytes: int) -> None:
        self._resp, self.max_bytes, self.received = resp, max_bytes, 0

    @property
    def status(self) -> int:
        return self._resp.status_code

    @property
    def headers(self) -> httpx.Headers:
        return self._resp.headers

    @property
    def url(self) -> str:
        return str(self._resp.url)

    @property
    def declared_length(self) -> int | None:
        value = self._resp.headers.get("content-length", "")
        return int(value) if value.isdigit() and len(value) < 20 else None

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_bytes():
                yield chunk
        except httpx.HTTPError as e:
            raise OutboundError(reason_of(e), type(e).__name__) from None

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk; raises OutboundError('too_large') as soon as the cap is passed."""
        declared = self.declared_length
        if declared is not None and declared > self.max_bytes:
            raise OutboundError("too_large", f"declares {declared} bytes, cap {self.max_bytes}")
        async for chunk in self._chunks():
            self.received += len(chunk)
            if self.received > self.max_bytes:
                raise OutboundError("too_large", f"more than {self.max_bytes} bytes")
            yield chunk

    async def read_prefix(self, n: int) -> bytes:
        """At most the first `n` bytes of the body (an error message, say); the rest is never read."""
        buf = bytearray()
        async for chunk in self._chunks():
            buf += chunk
            if len(buf) >= n:
                break
        return bytes(buf[:n])

    async def read(self) -> bytes:
        buf = bytearray()
        async for chunk in self.iter_bytes():
            buf += chunk
        return bytes(buf)

    async def json(self) -> Any:
        try:
            return orjson.loads(await self.read())
        except orjson.JSONDecodeError:
            raise OutboundError("protocol", "body is not JSON") from None


@dataclass(frozen=True, slots=True)
class Body:
    """A whole (capped) response: what `Outbound.get` returns."""

    status: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        """The body as JSON, as leniently as httpx read it (the stdlib accepts lone surrogate escapes, which
        callers then refuse field by field, where orjson would refuse a whole DID document)."""
        try:
            return json.loads(self.content)
        except (ValueError, RecursionError):
            raise OutboundError("protocol", "body is not JSON") from None


class _HostSlots:
    """At most `n` requests in flight per host; a host's entry lives only while it is in use."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        sem, users = self._slots.get(host, (asyncio.Semaphore(self.n), 0))
        self._slots[host] = (sem, users + 1)
        try:
            async with sem:
                yield
        finally:
            sem, users = self._slots[host]
            if users <= 1:
                del self._slots[host]
            else:
                self._slots[host] = (sem, users - 1)


class Outbound:
    """A guarded HTTP client; share one per process side (it pools connections).

    ``transport`` is a seam for tests only: it replaces the network (DNS and sockets); every URL check,
    redirect rule, byte cap and deadline here still applies. ``resolve`` replaces DNS only, ``ssl_context``
    the trusted CAs (tests serve https with their own CA).
    """

    def __init__(self, *, allow_private: bool = False, max_redirects: int = 3, per_host: int = 8,
                 max_connections: int = 100, user_agent: str = "plyr-appview",
                 resolve: Resolver | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.allow_private, self.max_redirects = allow_private, max_redirects
        self._slots = _HostSlots(per_host)
        self._transport = transport or GuardedTransport(allow_private=allow_private, resolve=resolve,
                                                        max_connections=max_connections, ssl_context=ssl_context)
        self._client = httpx.AsyncClient(
            transport=self._transport, trust_env=False, follow_redirects=False,
            # Cookies would be a way for one host to steer requests to another: none are kept.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            # The deadline is ours (asyncio.timeout); connect is bounded so a dead address yields to the next.
            timeout=httpx.Timeout(None, connect=10.0),
            headers={"user-agent": user_agent, "accept-encoding": "identity"})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Outbound:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def check(self, url: str | httpx.URL) -> str:
        """The up-front URL rules alone (no I/O); returns the scheme. Raises RefusedAddress."""
        return check_url(url, allow_private=self.allow_private)

    async def addresses(self, url: str) -> tuple[str, int, list[str]]:
        """(host, port, addresses) a connection to `url` may use — for clients that are not HTTP (the
        labeler websocket), which must then connect to one of these addresses. Raises OutboundError."""
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        http_url = {"wss": "https", "ws": "http"}.get(scheme, scheme) + url[len(scheme):]
        try:
            parsed = parse_url(http_url)
            self.check(parsed)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            backend = getattr(self._transport, "backend", None)
            if backend is None:  # a test transport: nothing to resolve
                return parsed.host, port, [parsed.host]
            async with asyncio.timeout(10.0):
                return parsed.host, port, await backend.addresses(parsed.host, port)
        except OutboundError as e:
            OUTBOUND_FAILURES.labels(e.reason).inc()
            raise
        except TimeoutError:
            OUTBOUND_FAILURES.labels("timeout").inc()
            raise OutboundError("timeout", "name resolution") from None

    @asynccontextmanager
    async def stream(self, method: str, url: str, *, timeout_s: float, max_bytes: int,
                     params: Params | None = None, headers: Mapping[str, str] | None = None
                     ) -> AsyncIterator[OutboundResponse]:
        """One request, redirects followed, the whole exchange (body included: read it inside the block)
        under one `timeout_s` deadline. Raises OutboundError; the block's own exceptions pass unchanged."""
        loop = asyncio.get_running_loop()
        # The clock starts once the first hop has its per-host slot: waiting behind our own requests to the
        # same host (a burst of DIDs for one PLC) is queueing, not the peer being slow. From then on it
        # covers every hop, the headers and the body.
        deadline = asyncio.timeout(None)

        def start_clock() -> None:
            if deadline.when() is None:
                deadline.reschedule(loop.time() + timeout_s)

        in_block = False
        try:
            async with deadline:
                async with self._follow(method, url, params, headers, start_clock) as resp:
                    in_block = True
                    yield OutboundResponse(resp, max_bytes)
        except OutboundError as e:
            OUTBOUND_FAILURES.labels(e.reason).inc()
            if e.reason == "refused":  # someone named an address we will not reach: worth a trace
                log.info("outbound.refused", url=url[:200], why=e.detail)
            raise
        except TimeoutError:
            if not deadline.expired():
                raise
            OUTBOUND_FAILURES.labels("timeout").inc()
            raise OutboundError("timeout", f"no complete answer within {timeout_s:g}s") from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as e:
            if in_block:
                raise
            reason = reason_of(e)
            OUTBOUND_FAILURES.labels(reason).inc()
            raise OutboundError(reason, type(e).__name__) from None

    async def get(self, url: str, *, timeout_s: float, max_bytes: int, params: Params | None = None,
                  headers: Mapping[str, str] | None = None) -> Body:
        """GET the whole body (any status), within `max_bytes` and one `timeout_s` deadline."""
        async with self.stream("GET", url, timeout_s=timeout_s, max_bytes=max_bytes, params=params,
                               headers=headers) as resp:
            return Body(resp.status, resp.headers, await resp.read())

    @asynccontextmanager
    async def _follow(self, method: str, url: str, params: Params | None, headers: Mapping[str, str] | None,
                      on_slot: Callable[[], None]) -> AsyncIterator[httpx.Response]:
        target = parse_url(url)
        if params:
            target = target.copy_merge_params({k: v for k, v in params.items() if v is not None})
        scheme = self.check(target)
        for _ in range(self.max_redirects + 1):
            async with self._slots.hold(target.host):
                on_slot()
                resp = await self._client.send(self._client.build_request(method, target, headers=headers),
                                               stream=True)
                try:
                    location = resp.headers.get("location") if resp.status_code in REDIRECTS else None
                    if location is None:
                        yield resp
                        return
                    try:
                        nxt = target.join(location)
                    except (httpx.InvalidURL, ValueError, TypeError, UnicodeError):
                        raise RefusedAddress("unparseable redirect") from None
                    check_redirect(scheme, nxt, allow_private=self.allow_private)
                    if resp.status_code == 303:
                        method = "GET"
                finally:
                    await resp.aclose()
            target = nxt
        raise RefusedAddress("too many redirects")
