"""The socket end of the outbound guard: resolve, check, connect to exactly the address checked.

httpx hands every new connection to its network backend as ``connect_tcp(host, port)``; ours resolves the
name itself, drops every non-global address and connects to the IP it checked, so a second lookup cannot
rebind the name to a private address (TLS still verifies the certificate for the *name*: httpcore passes
the origin's host as ``server_hostname``). IP literals take the same path. Redirect hops open their own
connections, so each hop is checked here too.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import typing
from collections.abc import Awaitable, Callable

import certifi
import httpcore
import httpx

from core.outbound_policy import OutboundError, RefusedAddress, public_ip

# host, port → IP literals (tests inject one to make a name resolve to a chosen address).
Resolver = Callable[[str, int], Awaitable[list[str]]]
MAX_ADDRESSES = 4  # addresses tried per connection (a name with a hundred A records is not our problem)


async def system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise OutboundError("unreachable", "name does not resolve") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, *, allow_private: bool, resolve: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self._resolve = resolve or system_resolve
        self._inner = httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses a connection to `host` may use, best first. Raises RefusedAddress / OutboundError."""
        found = await self._resolve(host, port)
        allowed = found if self.allow_private else [a for a in found if public_ip(a)]
        if not allowed:
            raise RefusedAddress("name resolves only to non-public addresses" if found else "no address")
        return allowed[:MAX_ADDRESSES]

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore's)
                          local_address: str | None = None,
                          socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for addr in await self.addresses(host, port):
            try:
                return await self._inner.connect_tcp(addr, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress("unix sockets are not outbound destinations")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request mapping, error mapping, pooling) over the guarded backend."""

    def __init__(self, *, allow_private: bool, resolve: Resolver | None = None, max_connections: int = 100,
                 keepalive: int = 20, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(trust_env=False, limits=httpx.Limits(max_connections=max_connections,
                                                              max_keepalive_connections=keepalive))
        self.backend = GuardedBackend(allow_private=allow_private, resolve=resolve)
        # httpx builds its pool without a network-backend parameter; this one is the same pool with ours.
        # (tests/core/test_outbound.py fails loudly if a new httpx stops honouring it.)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(cafile=certifi.where()),
            max_connections=max_connections, max_keepalive_connections=keepalive, keepalive_expiry=5.0,
            http1=True, http2=False, network_backend=self.backend)
