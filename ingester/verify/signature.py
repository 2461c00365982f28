"""Commit-signature verification against the repo's current DID-doc signing key.

Spec (sync §1.6 step 3): verify with the cached key; on failure refresh the DID doc once and retry,
because the account may have rotated its key since we cached the doc. Only then call it forged.
Pure logic over an :class:`IdentityResolver`; the caller decides what to do with the verdict.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from core.crypto import verify_signature
from core.identity import DidInfo, IdentityResolver, ResolveError


class VerdictKind(enum.Enum):
    OK = "ok"
    BAD_SIGNATURE = "bad_signature"
    UNRESOLVABLE = "unresolvable"
    NO_KEY = "no_key"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    reason: str | None = None  # ResolveError reason/detail for UNRESOLVABLE
    refreshed: bool = False  # a forced DID-doc refresh happened while deciding

    @property
    def ok(self) -> bool:
        return self.kind is VerdictKind.OK


class SignatureVerifier:
    """``verify(did, signed_bytes, sig)`` → :class:`Verdict`, with counters for metrics.

    ``refresh_cooldown_s``: after a forced refresh of a DID, further failures for that DID within this
    window are judged on the just-fetched doc instead of refetching. Without it every forged commit
    would cost a PLC request, letting a hostile PDS burn our PLC rate limit. 0 disables it.
    """

    def __init__(
        self,
        resolver: IdentityResolver,
        *,
        refresh_cooldown_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 10_000,
    ) -> None:
        self.resolver = resolver
        self.refresh_cooldown_s = refresh_cooldown_s
        self._clock = clock
        self._max_tracked = max_tracked
        self._last_refresh: OrderedDict[str, float] = OrderedDict()
        self.verified = self.forged = self.unresolvable = self.no_key = 0
        self.refreshed = self.refresh_skipped = 0

    def stats(self) -> dict[str, int]:
        return {
            "verified": self.verified,
            "forged": self.forged,
            "unresolvable": self.unresolvable,
            "no_key": self.no_key,
            "refreshed": self.refreshed,
            "refresh_skipped": self.refresh_skipped,
        }

    async def verify(self, did: str, signed_bytes: bytes, sig: bytes) -> Verdict:
        try:
            info = await self.resolver.resolve(did)
        except ResolveError as e:
            return self._unresolvable(e, refreshed=False)
        if _check(info, signed_bytes, sig):
            self.verified += 1
            return Verdict(VerdictKind.OK)

        # Failure with the cached doc (bad sig or no usable key): maybe the key rotated. Refresh once.
        if not self._may_refresh(did):
            self.refresh_skipped += 1
            return self._fail(info, refreshed=False)
        self.refreshed += 1
        try:
            info = await self.resolver.resolve(did, force=True)
        except ResolveError as e:
            return self._unresolvable(e, refreshed=True)
        if _check(info, signed_bytes, sig):
            self.verified += 1
            return Verdict(VerdictKind.OK, refreshed=True)
        return self._fail(info, refreshed=True)

    def judge(self, did: str, known: DidInfo | ResolveError, signed_bytes: bytes, sig: bytes, *,
              refreshed: bool) -> Verdict | None:
        """`verify` without the network, on the DID document at hand (`refreshed`: freshly fetched).

        None means: the signature fails on a document that may be stale and a refresh is allowed now;
        the caller fetches the document again (force) and asks once more, with `refreshed=True`.
        """
        if isinstance(known, ResolveError):
            return self._unresolvable(known, refreshed=refreshed)
        if _check(known, signed_bytes, sig):
            self.verified += 1
            return Verdict(VerdictKind.OK, refreshed=refreshed)
        if not refreshed:
            if self.may_refresh(did):
                self.refreshed += 1
                return None
            self.refresh_skipped += 1
        return self._fail(known, refreshed=refreshed)

    def may_refresh(self, did: str) -> bool:
        """Whether a forced DID-document refresh of `did` is allowed now (and, if so, counts it as done)."""
        return self._may_refresh(did)

    # --- helpers ----------------------------------------------------------------------------------

    def _may_refresh(self, did: str) -> bool:
        now = self._clock()
        last = self._last_refresh.get(did)
        if last is not None and now - last < self.refresh_cooldown_s:
            return False
        self._last_refresh[did] = now
        self._last_refresh.move_to_end(did)
        while len(self._last_refresh) > self._max_tracked:
            self._last_refresh.popitem(last=False)
        return True

    def _fail(self, info: DidInfo, *, refreshed: bool) -> Verdict:
        if info.signing_key is None:
            self.no_key += 1
            return Verdict(VerdictKind.NO_KEY, refreshed=refreshed)
        self.forged += 1
        return Verdict(VerdictKind.BAD_SIGNATURE, refreshed=refreshed)

    def _unresolvable(self, e: ResolveError, *, refreshed: bool) -> Verdict:
        self.unresolvable += 1
        reason = e.reason + (f": {e.detail}" if e.detail else "")
        return Verdict(VerdictKind.UNRESOLVABLE, reason=reason, refreshed=refreshed)


def _check(info: DidInfo, signed_bytes: bytes, sig: bytes) -> bool:
    return info.signing_key is not None and verify_signature(info.signing_key, signed_bytes, sig)
