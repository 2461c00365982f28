"""Bi-directional handle verification (spec/handle; sync.md §4.2).

A handle is shown only when the DID document claims it *and* the handle resolves back to that DID, through
DNS TXT `_atproto.<handle>` (`did=<DID>`) or `https://<handle>/.well-known/atproto-did` (tried together; DNS
wins when both answer). Otherwise the actor's handle is `handle.invalid`.

`.test` is reserved (RFC 2606) and never resolves on the real network; for it we ask the PDS named in the
DID document (`com.atproto.identity.resolveHandle`), which is how the local reference PDS of the tests works.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import structlog

from core.identity import DidInfo, IdentityResolver, ResolveError
from core.outbound import Outbound, OutboundError
from core.syntax import is_handle

log = structlog.get_logger(__name__)

INVALID_HANDLE = "handle.invalid"
_LOCAL_TLDS = (".test",)
_MAX_BODY = 2048

TxtLookup = Callable[[str], Awaitable[list[str]]]


async def dns_txt(name: str, timeout_s: float) -> list[str]:
    """TXT strings of `name` (empty when there are none or DNS fails: the HTTPS method may still answer)."""
    import dns.asyncresolver
    import dns.exception

    try:
        answer = await dns.asyncresolver.resolve(name, "TXT", lifetime=timeout_s)
    except (dns.exception.DNSException, OSError):
        return []
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


def did_from_txt(records: list[str]) -> str | None:
    dids = {r[4:].strip() for r in records if r.startswith("did=")}
    return dids.pop() if len(dids) == 1 else None  # several different DIDs: ambiguous, so none


class HandleResolver:
    """handle → DID (cached with TTL), and the verified handle of a resolved DID document."""

    def __init__(
        self,
        identity: IdentityResolver,
        *,
        ttl_s: float = 3600,
        error_ttl_s: float = 60,
        timeout_s: float = 3,
        client: Outbound | None = None,
        txt_lookup: TxtLookup | None = None,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity = identity
        self.ttl_s, self.error_ttl_s, self.timeout_s, self.max_entries = ttl_s, error_ttl_s, timeout_s, max_entries
        # The HTTPS method goes through the outbound guard: the identity resolver's client unless given one.
        self._client = client or identity.outbound
        self._txt = txt_lookup or (lambda name: dns_txt(name, timeout_s))
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    async def aclose(self) -> None:
        """Nothing of ours to close: the guarded client belongs to the identity resolver or the caller."""

    async def verified_handle(self, info: DidInfo, *, force: bool = False) -> str:
        """The handle of `info` if it resolves back to `info.did`, else `handle.invalid`."""
        handle = info.handle
        if handle is None:
            return INVALID_HANDLE
        did = await self.resolve(handle, pds=info.pds, force=force)
        if did != info.did:
            log.info("identity.handle_invalid", did=info.did, handle=handle, resolves_to=did)
            return INVALID_HANDLE
        return handle

    async def resolve(self, handle: str, *, pds: str | None = None, force: bool = False) -> str | None:
        handle = handle.lower()
        if not is_handle(handle):  # it becomes a host name below: nothing else may reach a URL
            return None
        # a `.test` answer depends on which PDS was asked
        key = f"{handle} {pds}" if handle.endswith(_LOCAL_TLDS) else handle
        entry = None if force else self._cache.get(key)
        if entry is not None and entry[0] > self._clock():
            self._cache.move_to_end(key)
            return entry[1]
        did = await self._resolve(handle, pds)
        self._cache[key] = (self._clock() + (self.ttl_s if did else self.error_ttl_s), did)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return did

    async def _resolve(self, handle: str, pds: str | None) -> str | None:
        if handle.endswith(_LOCAL_TLDS):
            if pds is None:
                return None
            try:
                return await self.identity.resolve_handle_via_pds(pds, handle)
            except ResolveError:
                return None
        dns_task = asyncio.ensure_future(self._txt(f"_atproto.{handle}"))
        http_task = asyncio.ensure_future(self._well_known(handle))
        try:
            by_dns = did_from_txt(await dns_task)
            if by_dns is not None:
                return by_dns
            return await http_task
        finally:
            http_task.cancel()

    async def _well_known(self, handle: str) -> str | None:
        return await self._well_known_url(f"https://{handle}/.well-known/atproto-did")

    async def _well_known_url(self, url: str) -> str | None:
        try:
            resp = await self._client.get(url, timeout_s=self.timeout_s, max_bytes=_MAX_BODY)
        except OutboundError as e:
            log.debug("identity.handle_https_failed", url=url, reason=e.reason)
            return None
        if not 200 <= resp.status < 300:
            return None
        lines = resp.content.decode("utf-8", "replace").strip().splitlines()
        did = lines[0].strip() if lines else ""
        return did if did.startswith("did:") else None
