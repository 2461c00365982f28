"""Label signatures against the labeler's `#atproto_label` key (spec/label), one DID refresh on failure.

The key is the one the label's own `src` names, so a label relayed by another host still has to be
signed by its author. When the source was configured by DID, `src` must also be that DID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.crypto import verify_signature
from core.identity import IdentityResolver, ResolveError
from core.labels import LabelError, label_key, signing_bytes


@dataclass(frozen=True, slots=True)
class LabelVerdict:
    verified: bool  # the signature was checked and holds
    rejected: str | None = None  # why the label is forged or unacceptable; None when fine or unverifiable
    unresolvable: str | None = None  # the labeler's DID could not be resolved (logged unverified)


class LabelVerifier:
    def __init__(self, resolver: IdentityResolver, *, expected_src: str | None = None) -> None:
        self.resolver = resolver
        self.expected_src = expected_src
        self.verified = self.forged = self.unresolvable = 0

    async def verify(self, label: dict[str, Any]) -> LabelVerdict:
        """`label` has passed `check_label` (src is a DID, sig is bytes)."""
        src: str = label["src"]
        if self.expected_src is not None and src != self.expected_src:
            self.forged += 1
            return LabelVerdict(False, f"src {src} is not the subscribed labeler {self.expected_src}")
        try:
            data = signing_bytes(label)
        except LabelError as e:
            self.forged += 1
            return LabelVerdict(False, str(e))
        verdict = await self._check(src, data, label["sig"], force=False)
        if verdict is not None and verdict.rejected is not None:
            # The labeler may have rotated its key since we cached its document: refetch once.
            verdict = await self._check(src, data, label["sig"], force=True)
        if verdict is None:
            self.verified += 1
            return LabelVerdict(True)
        if verdict.rejected is not None:
            self.forged += 1
        else:
            self.unresolvable += 1
        return verdict

    async def _check(self, src: str, data: bytes, sig: bytes, *, force: bool) -> LabelVerdict | None:
        try:
            info = await self.resolver.resolve(src, force=force)
        except ResolveError as e:
            return LabelVerdict(False, None, f"{e.reason}: {e.detail}" if e.detail else e.reason)
        key = label_key(src, info.doc)
        if key is None:
            return LabelVerdict(False, "labeler DID document has no #atproto_label key")
        if not verify_signature(key, data, sig):
            return LabelVerdict(False, "bad signature")
        return None
