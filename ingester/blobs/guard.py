"""SSRF guard for outbound fetches (PDS getBlob, audio URL probes).

Names are resolved by our own resolver, which refuses non-global addresses, and aiohttp connects
to exactly the addresses it returned (no second lookup to rebind). IP literals never reach a
resolver in aiohttp, so `check_url` refuses those up front. Redirects are followed by hand so that
every hop is checked and none may change the scheme.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver


class RefusedAddress(Exception):
    """The URL or its resolved address is not allowed for outbound fetches."""


def public_ip(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """Validate an outbound URL; returns its scheme. Raises RefusedAddress.

    Only https, plus http when private addresses are allowed (the local development peer)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError as e:
        raise RefusedAddress(f"unparseable URL: {e}") from None
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes:
        raise RefusedAddress(f"scheme {parts.scheme!r} not allowed")
    if not host:
        raise RefusedAddress("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedAddress("credentials in URL")
    if not allow_private:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            pass  # a name: the resolver checks what it resolves to
        else:
            if not public_ip(host):
                raise RefusedAddress(f"non-public address {host}")
    return parts.scheme


def check_redirect(original_scheme: str, location: str, *, allow_private: bool) -> None:
    if check_url(location, allow_private=allow_private) != original_scheme:
        raise RefusedAddress("redirect changes the scheme")


class GuardedResolver(AbstractResolver):
    """Resolves names and drops every non-global address; none left → the connection is refused."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self._inner = inner

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        if self._inner is None:
            self._inner = ThreadedResolver()
        results = await self._inner.resolve(host, port, family)
        if self.allow_private:
            return results
        public = [r for r in results if public_ip(r["host"])]
        if not public:
            raise OSError(f"refused: {host} resolves only to non-public addresses")
        return public

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def is_refusal(e: BaseException) -> bool:
    """Whether an exception from a guarded request is the guard's refusal."""
    seen: set[int] = set()
    cur: Any = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, RefusedAddress) or (isinstance(cur, OSError) and "refused: " in str(cur)):
            return True
        cur = cur.__cause__ or cur.__context__
    return False
