"""What a frame needs to know about its DID, without the network: the resolver's cache or a recent
background resolution (`resolution.py`), else `Park` — the frame waits for one (`parking.py`)."""

from __future__ import annotations

from typing import Any

from core.handles import HandleResolver
from core.identity import DidInfo, IdentityResolver, ResolveError
from ingester.pipeline.parking import Item
from ingester.pipeline.resolution import Resolutions


class Park(Exception):  # noqa: N818 - control flow, not an error
    """The frame needs an identity resolution first (`force`: a fresh fetch, not the cache).

    Raised before the frame has changed anything, so parking it and processing it later is the same as
    processing it now with the resolution at hand.
    """

    def __init__(self, force: bool) -> None:
        super().__init__(force)
        self.force = force


def error_payload(error: ResolveError, handle: str | None = None) -> dict[str, Any]:
    return {"handle": handle, "error": str(error)}


def identity_payload(info: DidInfo, handle: str | None = None) -> dict[str, Any]:
    return {
        "handle": handle or info.handle,
        "doc_handle": info.handle,
        "pds": info.pds,
        "signing_key": info.signing_key.did_key if info.signing_key else None,
    }


class IdentityLookups:
    def __init__(self, resolver: IdentityResolver, handles: HandleResolver | None, resolutions: Resolutions) -> None:
        self.resolver, self.handles, self.resolutions = resolver, handles, resolutions

    def doc(self, did: str, item: Item) -> tuple[DidInfo | ResolveError, bool]:
        """The DID document (or why there is none) for a frame, and whether it was fetched after the frame
        arrived; `Park` when neither the cache nor a recent resolution has it."""
        r = self.resolutions.result(did)
        if r is not None and r.requested_at >= item.arrived:
            return r.known, r.forced
        cached = self.resolver.peek(did)
        if cached is not None:
            return cached, False
        if r is not None and r.info is None:  # a deadline: the resolver does not cache those; we wait no more
            return r.known, False
        raise Park(False)

    def identity_payload(self, did: str, item: Item, hint: str | None, *, force: bool) -> dict[str, Any]:
        """The payload of an `identity` row (handle verified both ways when we can); `Park` until resolved."""
        r = self.resolutions.result(did)
        if r is not None and (not force or r.requested_at >= item.arrived):
            if r.info is None:
                return error_payload(r.error or ResolveError(did, "timeout"), hint)
            return identity_payload(r.info, r.handle or hint)
        if not force and self.handles is None:
            cached = self.resolver.peek(did)
            if isinstance(cached, DidInfo):
                return identity_payload(cached, hint)
            if cached is not None:
                return error_payload(cached, hint)
        raise Park(force)
