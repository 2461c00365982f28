"""Blob CIDs: CIDv1, raw codec (0x55), sha256 multihash — the only shape atproto blobs use."""

from __future__ import annotations

import base64
import hashlib

# varint(1) · varint(0x55 raw) · varint(0x12 sha2-256) · varint(32 bytes)
RAW_SHA256_PREFIX = b"\x01\x55\x12\x20"


class UnsupportedCid(ValueError):
    """The CID is not a CIDv1 raw/sha256 in base32: we cannot verify bytes against it."""


def raw_cid(digest: bytes) -> str:
    """The base32 (multibase 'b') CIDv1 string of a raw blob with this sha256 digest."""
    if len(digest) != 32:
        raise ValueError("sha256 digest must be 32 bytes")
    return "b" + base64.b32encode(RAW_SHA256_PREFIX + digest).decode().lower().rstrip("=")


def cid_of(data: bytes) -> str:
    return raw_cid(hashlib.sha256(data).digest())


def expected_digest(cid: str) -> bytes:
    """The sha256 digest a blob with this CID must hash to; raises UnsupportedCid otherwise."""
    if not isinstance(cid, str) or len(cid) != 59 or not cid.startswith("b") or cid != cid.lower():
        raise UnsupportedCid(f"not a base32 CIDv1 raw/sha256: {cid[:80]!r}")
    body = cid[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (ValueError, base64.binascii.Error) as e:  # type: ignore[attr-defined]
        raise UnsupportedCid(f"bad base32 in CID: {e}") from None
    if len(raw) != 36 or not raw.startswith(RAW_SHA256_PREFIX):
        raise UnsupportedCid("CID is not raw codec with a sha256 multihash")
    return raw[4:]


def is_blob_cid(s: str) -> bool:
    try:
        expected_digest(s)
    except UnsupportedCid:
        return False
    return True
