"""atproto public keys and signature verification (k256 + p256, low-S only).

Key encodings we accept (spec/cryptography, spec/did):
  * Multikey: ``z`` + base58btc(varint multicodec + 33-byte compressed point); the modern PLC form.
  * did:key: ``did:key:`` + a Multikey string.
  * Legacy ``EcdsaSecp256k1VerificationKey2019`` / ``EcdsaSecp256r1VerificationKey2019``: multibase of the
    raw point (compressed or 65-byte uncompressed) with *no* multicodec prefix. Old PLC servers, including
    the local ``@did-plc/server`` 0.0.1 used in tests, still serve this.

Signatures are 64-byte raw ``r || s`` over SHA-256(data). atproto requires low-S; the interop vectors
contain high-S and DER signatures that must be rejected, so we check S ourselves rather than trusting
each backend's (different) malleability policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import coincurve
import libipld
from coincurve.ecdsa import cdata_to_der, deserialize_compact
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

Curve = Literal["k256", "p256"]

# multicodec codes (https://github.com/multiformats/multicodec): secp256k1-pub, p256-pub.
_CODEC_TO_CURVE: dict[int, Curve] = {0xE7: "k256", 0x1200: "p256"}
_CURVE_TO_CODEC: dict[Curve, int] = {v: k for k, v in _CODEC_TO_CURVE.items()}

LEGACY_TYPES: dict[str, Curve] = {
    "EcdsaSecp256k1VerificationKey2019": "k256",
    "EcdsaSecp256r1VerificationKey2019": "p256",
}

# Group orders; a signature is low-S iff s <= n // 2.
_ORDER: dict[Curve, int] = {
    "k256": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    "p256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
}
_HALF_ORDER: dict[Curve, int] = {c: n // 2 for c, n in _ORDER.items()}

# base58 decoding is quadratic in input length; real keys are < 100 chars, so refuse anything absurd
# before handing it to the decoder (DID docs come from the network).
_MAX_MULTIBASE_LEN = 128
DID_KEY_PREFIX = "did:key:"


@dataclass(frozen=True)
class PublicKey:
    """A curve name plus the 33-byte SEC1 compressed point. Hashable, so usable as a cache key."""

    curve: Curve
    compressed: bytes

    @property
    def multikey(self) -> str:
        return libipld.encode_multibase("z", _varint(_CURVE_TO_CODEC[self.curve]) + self.compressed)

    @property
    def did_key(self) -> str:
        return DID_KEY_PREFIX + self.multikey

    def __repr__(self) -> str:  # the bytes repr is noise in logs; did:key is what people grep for
        return f"PublicKey({self.curve}, {self.did_key})"


# --- encoding helpers ---------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, int]:
    """Return (value, bytes consumed) of an unsigned LEB128 varint at the start of data."""
    value = 0
    for i, b in enumerate(data[:9]):
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            return value, i + 1
    raise ValueError("truncated or oversized multicodec varint")


def _decode_base58btc(multibase: str, what: str) -> bytes:
    if not isinstance(multibase, str) or not multibase.startswith("z"):
        raise ValueError(f"{what}: expected base58btc multibase starting with 'z', got {multibase!r:.40}")
    if len(multibase) > _MAX_MULTIBASE_LEN:
        raise ValueError(f"{what}: multibase string too long ({len(multibase)} chars)")
    try:
        _, raw = libipld.decode_multibase(multibase)
    except ValueError as e:
        raise ValueError(f"{what}: invalid base58btc: {e}") from None
    return raw


def _compress(curve: Curve, point: bytes) -> bytes:
    """Validate that point is on the curve and return its compressed form (raises ValueError)."""
    if not (len(point) == 33 and point[0] in (2, 3)) and not (len(point) == 65 and point[0] == 4):
        raise ValueError(f"{curve} key must be a 33-byte compressed or 65-byte uncompressed point")
    try:
        if curve == "k256":
            return coincurve.PublicKey(point).format(compressed=True)
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    except ValueError as e:
        raise ValueError(f"{curve} key is not a valid curve point: {e}") from None


# --- parsing ------------------------------------------------------------------------------------


def parse_multikey(multibase: str) -> PublicKey:
    """Parse a Multikey ``publicKeyMultibase`` (``zQ3sh…`` for k256, ``zDnae…`` for p256)."""
    raw = _decode_base58btc(multibase, "multikey")
    code, n = _read_varint(raw)
    curve = _CODEC_TO_CURVE.get(code)
    if curve is None:
        raise ValueError(f"multikey: unsupported multicodec 0x{code:x} (want 0xe7 k256 or 0x1200 p256)")
    key = raw[n:]
    if len(key) != 33:  # Multikey is defined over the compressed form only
        raise ValueError(f"multikey: {curve} key must be 33 bytes compressed, got {len(key)}")
    return PublicKey(curve, _compress(curve, key))


def parse_did_key(did_key: str) -> PublicKey:
    if not isinstance(did_key, str) or not did_key.startswith(DID_KEY_PREFIX):
        raise ValueError(f"not a did:key: {did_key!r:.60}")
    return parse_multikey(did_key[len(DID_KEY_PREFIX) :])


def parse_legacy_key(type: str, multibase: str) -> PublicKey:  # noqa: A002 - mirrors the DID-doc field
    """Parse a legacy ``EcdsaSecp256{k,r}1VerificationKey2019`` key (raw point, no multicodec)."""
    curve = LEGACY_TYPES.get(type)
    if curve is None:
        raise ValueError(f"unsupported legacy verification method type {type!r}")
    return PublicKey(curve, _compress(curve, _decode_base58btc(multibase, type)))


# --- verification -------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _k256_key(compressed: bytes) -> coincurve.PublicKey | None:
    # Point decoding is ~15% (k256) / ~30% (p256) of a verify (measured) and one key signs every commit
    # of a repo, so keep the parsed objects. Invalid points are cached as None.
    try:
        return coincurve.PublicKey(compressed)
    except (ValueError, TypeError):
        return None


@lru_cache(maxsize=65536)
def _p256_key(compressed: bytes) -> ec.EllipticCurvePublicKey | None:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), compressed)
    except (ValueError, TypeError):
        return None


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def verify_signature(key: PublicKey, data: bytes, sig: bytes) -> bool:
    """True iff ``sig`` (64-byte raw r||s, low-S) is a valid ECDSA-SHA256 signature of ``data``.

    Never raises for bad input: wrong-length signatures (e.g. DER), high-S, invalid keys → False.
    """
    if (
        not isinstance(sig, bytes | bytearray)
        or len(sig) != 64
        or key.curve not in _ORDER
        or not isinstance(key.compressed, bytes)
    ):
        return False
    sig = bytes(sig)
    r = int.from_bytes(sig[:32], "big")
    s = int.from_bytes(sig[32:], "big")
    if not (0 < r < _ORDER[key.curve] and 0 < s <= _HALF_ORDER[key.curve]):
        return False  # high-S is malleable and invalid in atproto; also rejects zero/overflowing scalars
    if key.curve == "k256":
        pub = _k256_key(key.compressed)
        if pub is None:
            return False
        # coincurve's verify() wants DER; compact→DER via libsecp256k1 costs ~4% of a verify (measured), so
        # stay on the public API. libsecp256k1 also rejects high-S itself, consistent with the check above.
        try:
            der = cdata_to_der(deserialize_compact(sig))
        except ValueError:
            return False
        return pub.verify(der, data)
    pk = _p256_key(key.compressed)
    if pk is None:
        return False
    try:
        pk.verify(encode_dss_signature(r, s), data, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True
