"""core.crypto against the official atproto interop vectors plus edge cases and property tests."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import coincurve
import libipld
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import (
    PublicKey,
    parse_did_key,
    parse_legacy_key,
    parse_multikey,
    verify_signature,
)

VECTORS = Path(__file__).parent / "vectors" / "crypto"
K256_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _load(name: str) -> list[dict[str, Any]]:
    return json.loads((VECTORS / name).read_text())


def _b64(s: str) -> bytes:
    return base64.b64decode(s + "=" * (-len(s) % 4))  # vectors use unpadded base64


# --- signing helpers (tests only) --------------------------------------------------------------


def sign_k256(sk: coincurve.PrivateKey, data: bytes) -> bytes:
    return sk.sign_recoverable(data)[:64]  # libsecp256k1 always emits low-S r||s


def sign_p256(sk: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(sk.sign(data, ec.ECDSA(hashes.SHA256())))
    s = min(s, P256_N - s)  # OpenSSL doesn't normalise; atproto requires low-S
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def p256_public(sk: ec.EllipticCurvePrivateKey, compressed: bool = True) -> bytes:
    fmt = (
        serialization.PublicFormat.CompressedPoint
        if compressed
        else serialization.PublicFormat.UncompressedPoint
    )
    return sk.public_key().public_bytes(serialization.Encoding.X962, fmt)


def flip_s(sig: bytes, n: int) -> bytes:
    s = int.from_bytes(sig[32:], "big")
    return sig[:32] + (n - s).to_bytes(32, "big")


# --- official vectors --------------------------------------------------------------------------

SIG_FIXTURES = _load("signature-fixtures.json")


@pytest.mark.parametrize("fx", SIG_FIXTURES, ids=[f["comment"] for f in SIG_FIXTURES])
def test_signature_fixtures(fx: dict[str, Any]) -> None:
    key = parse_did_key(fx["publicKeyDid"])
    assert key.curve == {"ES256K": "k256", "ES256": "p256"}[fx["algorithm"]]
    assert key.did_key == fx["publicKeyDid"]
    # the same key in the legacy DID-doc encoding (raw compressed point, no multicodec)
    assert parse_legacy_key(fx["didDocSuite"], fx["publicKeyMultibase"]) == key
    assert (
        verify_signature(key, _b64(fx["messageBase64"]), _b64(fx["signatureBase64"])) is fx["validSignature"]
    )


def test_fixtures_cover_high_s_and_der() -> None:
    tags = {t for fx in SIG_FIXTURES for t in fx["tags"]}
    assert {"high-s", "der-encoded"} <= tags


@pytest.mark.parametrize("fx", _load("w3c_didkey_K256.json"), ids=lambda f: f["publicDidKey"][-8:])
def test_w3c_didkey_k256(fx: dict[str, Any]) -> None:
    sk = coincurve.PrivateKey(bytes.fromhex(fx["privateKeyBytesHex"]))
    key = PublicKey("k256", sk.public_key.format(compressed=True))
    assert key.did_key == fx["publicDidKey"]
    assert parse_did_key(fx["publicDidKey"]) == key
    assert verify_signature(key, b"hello", sign_k256(sk, b"hello"))


@pytest.mark.parametrize("fx", _load("w3c_didkey_P256.json"), ids=lambda f: f["publicDidKey"][-8:])
def test_w3c_didkey_p256(fx: dict[str, Any]) -> None:
    _, priv = libipld.decode_multibase("z" + fx["privateKeyBytesBase58"])
    sk = ec.derive_private_key(int.from_bytes(priv, "big"), ec.SECP256R1())
    key = PublicKey("p256", p256_public(sk))
    assert key.did_key == fx["publicDidKey"]
    assert parse_did_key(fx["publicDidKey"]) == key
    assert verify_signature(key, b"hello", sign_p256(sk, b"hello"))


# --- parsing -------------------------------------------------------------------------------------


def test_prefixes_match_spec() -> None:
    k = PublicKey("k256", coincurve.PrivateKey().public_key.format())
    p = PublicKey("p256", p256_public(ec.generate_private_key(ec.SECP256R1())))
    assert k.did_key.startswith("did:key:zQ3sh") and p.did_key.startswith("did:key:zDnae")
    assert parse_multikey(k.multikey) == k and parse_multikey(p.multikey) == p


def test_legacy_uncompressed_keys_compress() -> None:
    ksk = coincurve.PrivateKey()
    raw = ksk.public_key.format(compressed=False)
    assert len(raw) == 65
    k = parse_legacy_key("EcdsaSecp256k1VerificationKey2019", libipld.encode_multibase("z", raw))
    assert k == PublicKey("k256", ksk.public_key.format())
    psk = ec.generate_private_key(ec.SECP256R1())
    p = parse_legacy_key(
        "EcdsaSecp256r1VerificationKey2019", libipld.encode_multibase("z", p256_public(psk, compressed=False))
    )
    assert p == PublicKey("p256", p256_public(psk))


def _mb(b: bytes) -> str:
    return libipld.encode_multibase("z", b)


GOOD_K = coincurve.PrivateKey().public_key.format()


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "starting with 'z'"),
        ("f" + GOOD_K.hex(), "starting with 'z'"),  # base16 multibase is legal multibase but not atproto
        ("z0OIl", "invalid base58btc"),
        ("z" + "2" * 500, "too long"),
        (_mb(b"\xed\x01" + bytes(32)), "unsupported multicodec 0xed"),  # ed25519
        (_mb(b"\xe7\x01" + GOOD_K[:-1]), "33 bytes"),
        (_mb(b"\xe7\x01" + coincurve.PrivateKey().public_key.format(compressed=False)), "33 bytes"),
        (_mb(b"\xe7\x01" + b"\x02" + b"\xff" * 32), "not a valid curve point"),  # x >= field prime
        (_mb(b"\x80\x24" + b"\x05" + bytes(32)), "not a valid curve point|33-byte"),
        (_mb(b"\xff\xff"), "varint"),
    ],
)
def test_parse_multikey_rejects(value: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_multikey(value)


def test_parse_did_key_and_legacy_reject() -> None:
    with pytest.raises(ValueError, match="not a did:key"):
        parse_did_key("did:plc:abc")
    with pytest.raises(ValueError, match="unsupported legacy"):
        parse_legacy_key("Ed25519VerificationKey2020", _mb(GOOD_K))
    with pytest.raises(ValueError, match="33-byte compressed or 65-byte"):
        parse_legacy_key("EcdsaSecp256k1VerificationKey2019", _mb(b"\xe7\x01" + GOOD_K))  # prefix not allowed


# --- verification edge cases ---------------------------------------------------------------------


def test_high_s_rejected_low_s_accepted_both_curves() -> None:
    data = b"commit bytes"
    ksk = coincurve.PrivateKey()
    k = PublicKey("k256", ksk.public_key.format())
    ks = sign_k256(ksk, data)
    assert verify_signature(k, data, ks)
    assert not verify_signature(k, data, flip_s(ks, K256_N))  # mathematically valid, but malleable
    psk = ec.generate_private_key(ec.SECP256R1())
    p = PublicKey("p256", p256_public(psk))
    ps = sign_p256(psk, data)
    assert verify_signature(p, data, ps)
    assert not verify_signature(p, data, flip_s(ps, P256_N))


@pytest.mark.parametrize("curve", ["k256", "p256"])
def test_verify_never_raises(curve: str) -> None:
    if curve == "k256":
        sk = coincurve.PrivateKey()
        key, sig = PublicKey("k256", sk.public_key.format()), sign_k256(sk, b"x")
        n = K256_N
    else:
        psk = ec.generate_private_key(ec.SECP256R1())
        key, sig = PublicKey("p256", p256_public(psk)), sign_p256(psk, b"x")
        n = P256_N
    bad_sigs = [
        b"",
        sig[:63],
        sig + b"\x00",
        bytes(64),
        b"\xff" * 64,
        sig[:32] + bytes(32),  # s = 0
        bytes(32) + sig[32:],  # r = 0
        n.to_bytes(32, "big") + sig[32:],  # r = n
        sig[:32] + (n // 2 + 1).to_bytes(32, "big"),  # smallest high S
    ]
    for bad in bad_sigs:
        assert verify_signature(key, b"x", bad) is False
    assert verify_signature(key, b"y", sig) is False
    for bad_key in [
        b"",
        b"\x02" + bytes(32),
        b"\x04" + bytes(64),
        b"\x02" + b"\xff" * 32,
        key.compressed[:-1],
    ]:
        assert verify_signature(PublicKey(key.curve, bad_key), b"x", sig) is False  # type: ignore[arg-type]
    assert verify_signature(PublicKey("ed25519", key.compressed), b"x", sig) is False  # type: ignore[arg-type]
    assert verify_signature(key, b"x", "not bytes") is False  # type: ignore[arg-type]


def test_signature_does_not_verify_under_other_key() -> None:
    a, b = coincurve.PrivateKey(), coincurve.PrivateKey()
    sig = sign_k256(a, b"data")
    assert not verify_signature(PublicKey("k256", b.public_key.format()), b"data", sig)


def test_agrees_with_atproto_sdk() -> None:
    from atproto_crypto.verify import verify_signature as sdk_verify

    for fx in SIG_FIXTURES:
        msg, sig = _b64(fx["messageBase64"]), _b64(fx["signatureBase64"])
        ours = verify_signature(parse_did_key(fx["publicKeyDid"]), msg, sig)
        assert ours == sdk_verify(fx["publicKeyDid"], msg, sig) == fx["validSignature"]


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=2048), secret=st.integers(1, K256_N - 1), pos=st.integers(0, 2047))
def test_property_k256_roundtrip_and_tamper(data: bytes, secret: int, pos: int) -> None:
    sk = coincurve.PrivateKey.from_int(secret)
    key = parse_did_key(PublicKey("k256", sk.public_key.format()).did_key)
    sig = sign_k256(sk, data)
    assert verify_signature(key, data, sig)
    if data:
        i = pos % len(data)
        tampered = data[:i] + bytes([data[i] ^ 1]) + data[i + 1 :]
        assert not verify_signature(key, tampered, sig)


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=1024), secret=st.integers(1, P256_N - 1))
def test_property_p256_roundtrip_and_high_s(data: bytes, secret: int) -> None:
    sk = ec.derive_private_key(secret, ec.SECP256R1())
    key = parse_did_key(PublicKey("p256", p256_public(sk)).did_key)
    sig = sign_p256(sk, data)
    assert verify_signature(key, data, sig)
    assert not verify_signature(key, data, flip_s(sig, P256_N))
    assert not verify_signature(key, data + b"!", sig)
