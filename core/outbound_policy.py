"""What an outbound request may reach: the address and URL rules of the outbound guard (no I/O here).

Allowed: https to a name or to a global unicast IP literal. Refused: every other scheme, credentials in
the URL, and loopback, private, link-local, shared (CGNAT), multicast, unspecified, reserved and
documentation addresses — also when written as IPv4-mapped, 6to4 or Teredo IPv6. Names are checked
again after resolution (``core.outbound_net``); the check here refuses what needs no resolver.
``allow_private`` (OUTBOUND_ALLOW_PRIVATE, local development only) lifts the address rules and allows http.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

import httpx

# Why a request failed, as a category safe to log, store and show (never the peer's own error text).
OutboundReason = Literal["refused", "timeout", "too_large", "unreachable", "protocol"]
REASONS: tuple[OutboundReason, ...] = ("refused", "timeout", "too_large", "unreachable", "protocol")

_LOCAL_NAMES = ("localhost", ".localhost")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class OutboundError(Exception):
    """An outbound request failed; ``reason`` is one of :data:`REASONS`, ``detail`` is our own words."""

    def __init__(self, reason: OutboundReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: OutboundReason = reason
        self.detail = detail


class RefusedAddress(OutboundError):
    """The guard refused the URL or the address it resolves to; nothing was sent."""

    def __init__(self, detail: str) -> None:
        super().__init__("refused", detail)


def public_ip(addr: str) -> bool:
    """Whether `addr` (an IP literal, optionally with a %zone) is a global unicast address."""
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return public_ip(str(ip.ipv4_mapped))
        if ip in _NAT64:  # a NAT64 gateway forwards to the embedded IPv4
            return public_ip(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
        if ip.sixtofour is not None or ip.teredo is not None:
            return False  # tunnels to an embedded address: never needed for atproto hosts
    return bool(ip.is_global and not (ip.is_multicast or ip.is_loopback or ip.is_link_local or ip.is_private
                                      or ip.is_reserved or ip.is_unspecified))


def ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def parse_url(url: str | httpx.URL) -> httpx.URL:
    """Parse with the same parser the client sends with (no parser differential). Raises RefusedAddress."""
    if isinstance(url, httpx.URL):
        return url
    if not isinstance(url, str) or len(url) > 8192:
        raise RefusedAddress("not a URL")
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError, UnicodeError):
        raise RefusedAddress("unparseable URL") from None


def check_url(url: str | httpx.URL, *, allow_private: bool) -> str:
    """Refuse what the guard never allows; returns the scheme. Raises RefusedAddress.

    Only https, plus http when private addresses are allowed (the local development peer)."""
    parsed = parse_url(url)
    scheme = parsed.scheme
    if scheme not in (("https", "http") if allow_private else ("https",)):
        raise RefusedAddress(f"scheme {scheme[:16]!r} not allowed")
    host = parsed.host
    if not host:
        raise RefusedAddress("URL has no host")
    if parsed.userinfo:
        raise RefusedAddress("credentials in URL")
    try:
        port = parsed.port
    except (httpx.InvalidURL, ValueError):
        raise RefusedAddress("bad port") from None
    if port is not None and not 0 < port < 65536:
        raise RefusedAddress("bad port")
    if allow_private:
        return scheme
    lowered = host.lower().rstrip(".")
    if lowered == _LOCAL_NAMES[0] or lowered.endswith(_LOCAL_NAMES[1]):
        raise RefusedAddress("loopback name")
    if ip_literal(host) and not public_ip(host):
        raise RefusedAddress("non-public address")
    return scheme


def check_redirect(original_scheme: str, location: str | httpx.URL, *, allow_private: bool) -> None:
    """A redirect hop: the same rules, and never a change of scheme."""
    if check_url(location, allow_private=allow_private) != original_scheme:
        raise RefusedAddress("redirect changes the scheme")
