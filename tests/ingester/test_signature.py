"""SignatureVerifier: cached key → refresh-once-on-failure → verdict (sync spec §1.6 step 3)."""

from __future__ import annotations

from typing import Any

import coincurve
import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from core.crypto import PublicKey
from core.identity import IdentityResolver
from core.outbound import Outbound
from ingester.verify.signature import SignatureVerifier, Verdict, VerdictKind

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
DATA = b"\xa5cdidx dag-cbor commit without sig"


def k256_multikey(sk: coincurve.PrivateKey) -> str:
    return PublicKey("k256", sk.public_key.format()).multikey


def sign(sk: coincurve.PrivateKey, data: bytes) -> bytes:
    return sk.sign_recoverable(data)[:64]  # compact r||s, low-S


def doc(multikey: str | None) -> dict[str, Any]:
    vms = [{"id": "#atproto", "type": "Multikey", "controller": DID, "publicKeyMultibase": multikey}]
    return {"id": DID, "alsoKnownAs": ["at://a.example.com"], "verificationMethod": vms if multikey else []}


class FakePlc:
    """Serves a sequence of docs for DID: each fetch advances to the next (the last one repeats)."""

    def __init__(self, *docs: dict[str, Any] | int) -> None:
        self.docs = list(docs)
        self.fetches = 0

    async def __call__(self, req: httpx.Request) -> httpx.Response:
        d = self.docs[min(self.fetches, len(self.docs) - 1)]
        self.fetches += 1
        return httpx.Response(d, json={}) if isinstance(d, int) else httpx.Response(200, json=d)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def verifier(plc: FakePlc, **kw: Any) -> SignatureVerifier:
    client = Outbound(transport=httpx.MockTransport(plc))
    return SignatureVerifier(IdentityResolver(plc_url="https://plc.test", client=client), **kw)


async def test_good_signature_ok_without_refresh() -> None:
    sk = coincurve.PrivateKey()
    plc = FakePlc(doc(k256_multikey(sk)))
    v = verifier(plc)
    for _ in range(3):
        assert await v.verify(DID, DATA, sign(sk, DATA)) == Verdict(VerdictKind.OK)
    assert plc.fetches == 1 and v.verified == 3 and v.refreshed == 0


async def test_tampered_data_refreshes_then_bad_signature() -> None:
    sk = coincurve.PrivateKey()
    plc = FakePlc(doc(k256_multikey(sk)))
    v = verifier(plc)
    verdict = await v.verify(DID, DATA + b"x", sign(sk, DATA))
    assert verdict.kind is VerdictKind.BAD_SIGNATURE and verdict.refreshed and not verdict.ok
    assert plc.fetches == 2 and v.forged == 1 and v.refreshed == 1


async def test_key_rotation_ok_after_refresh() -> None:
    old, new = coincurve.PrivateKey(), coincurve.PrivateKey()
    plc = FakePlc(doc(k256_multikey(old)), doc(k256_multikey(new)))
    v = verifier(plc)
    assert (await v.verify(DID, DATA, sign(old, DATA))).ok  # caches the old doc
    verdict = await v.verify(DID, DATA, sign(new, DATA))  # signed after rotation
    assert verdict == Verdict(VerdictKind.OK, refreshed=True)
    assert (await v.verify(DID, DATA, sign(new, DATA))) == Verdict(VerdictKind.OK)  # new doc now cached
    assert plc.fetches == 2 and v.stats()["refreshed"] == 1 and v.forged == 0


async def test_p256_signing_key() -> None:
    sk = ec.generate_private_key(ec.SECP256R1())
    pub = sk.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    r, s = decode_dss_signature(sk.sign(DATA, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + min(s, P256_N - s).to_bytes(32, "big")
    v = verifier(FakePlc(doc(PublicKey("p256", pub).multikey)))
    assert (await v.verify(DID, DATA, sig)).ok


@pytest.mark.parametrize(("status", "reason"), [(404, "not_found"), (410, "tombstoned"), (502, "http_error")])
async def test_unresolvable(status: int, reason: str) -> None:
    v = verifier(FakePlc(status))
    verdict = await v.verify(DID, DATA, bytes(64))
    assert verdict.kind is VerdictKind.UNRESOLVABLE and verdict.reason is not None
    assert verdict.reason.startswith(reason) and not verdict.refreshed
    assert v.unresolvable == 1


async def test_tombstoned_during_refresh_is_unresolvable() -> None:
    old, new = coincurve.PrivateKey(), coincurve.PrivateKey()
    v = verifier(FakePlc(doc(k256_multikey(old)), 410))
    assert (await v.verify(DID, DATA, sign(old, DATA))).ok
    verdict = await v.verify(DID, DATA, sign(new, DATA))
    assert verdict.kind is VerdictKind.UNRESOLVABLE and verdict.refreshed
    assert verdict.reason is not None and verdict.reason.startswith("tombstoned")


async def test_no_key_after_refresh() -> None:
    plc = FakePlc(doc(None))
    v = verifier(plc)
    verdict = await v.verify(DID, DATA, bytes(64))
    assert verdict == Verdict(VerdictKind.NO_KEY, refreshed=True)
    assert plc.fetches == 2 and v.no_key == 1


async def test_key_added_by_refresh() -> None:
    sk = coincurve.PrivateKey()
    v = verifier(FakePlc(doc(None), doc(k256_multikey(sk))))
    assert await v.verify(DID, DATA, sign(sk, DATA)) == Verdict(VerdictKind.OK, refreshed=True)


async def test_refresh_cooldown_limits_plc_load_from_forgeries() -> None:
    sk, forger = coincurve.PrivateKey(), coincurve.PrivateKey()
    clock = FakeClock()
    plc = FakePlc(doc(k256_multikey(sk)))
    v = verifier(plc, refresh_cooldown_s=10, clock=clock)
    for _ in range(5):
        assert (await v.verify(DID, DATA, sign(forger, DATA))).kind is VerdictKind.BAD_SIGNATURE
    assert plc.fetches == 2 and v.refreshed == 1 and v.refresh_skipped == 4 and v.forged == 5
    clock.t += 11
    verdict = await v.verify(DID, DATA, sign(forger, DATA))
    assert verdict.refreshed and plc.fetches == 3
    assert (await v.verify(DID, DATA, sign(sk, DATA))).ok  # genuine commits unaffected
