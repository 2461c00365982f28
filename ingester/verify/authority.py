"""Who may speak for an account: the upstream a frame came from, a relay or the account's own PDS.

A `#commit` or `#sync` carries the account's signature, so it proves itself whoever forwards it. `#account`
(hosting status) and `#identity` carry none: they are the word of the host that sent them. A relay aggregates
every PDS and is trusted as a relay (it has checked its upstreams). A PDS followed directly is trusted only
for the accounts it hosts, i.e. whose DID document names it as `#atproto_pds`; otherwise any PDS could take
down, or bring back, anybody's account.

Which hosts are relays is configuration (`FIREHOSE_RELAYS`), never detection: any host can answer
`com.atproto.sync.listHosts`, so a hostile PDS could claim to be a relay to be trusted like one. A host we are
not told is a relay is held to the stricter PDS rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.identity import DidInfo

_SCHEMES = {"ws": "http", "http": "http", "wss": "https", "https": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str | None) -> str | None:
    """`scheme://host[:port]` with ws→http, wss→https, the host lower-cased and a default port dropped.

    A bare host is https. None for anything that is not an http(s)/ws(s) URL with a host.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        port = parts.port
    except ValueError:
        return None
    scheme = _SCHEMES.get(parts.scheme.lower())
    host = (parts.hostname or "").lower()
    if scheme is None or not host:
        return None
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class Upstream:
    """The host a source follows, and in which role we trust it."""

    url: str
    origin: str | None
    relay: bool

    @classmethod
    def of(cls, url: str, relays: Iterable[str]) -> Upstream:
        own = origin(url)
        return cls(url, own, own is not None and own in {origin(r) for r in relays})

    @classmethod
    def trusted_relay(cls, url: str = "wss://bsky.network") -> Upstream:
        return cls(url, origin(url), True)

    @property
    def role(self) -> str:
        return "relay" if self.relay else "pds"


def hosted_by(upstream: Upstream, info: DidInfo) -> str | None:
    """None when `upstream` may speak for the account of `info`, else why not."""
    if upstream.relay:
        return None
    if info.pds is None:
        return "DID document names no #atproto_pds"
    if upstream.origin is None or origin(info.pds) != upstream.origin:
        return "DID document names another PDS"
    return None
