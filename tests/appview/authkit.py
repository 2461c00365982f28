"""Test kit for viewer auth: our own k256/p256 keys, service-auth JWTs signed with them, and a fake PLC
directory (an httpx MockTransport at the network edge) serving the matching DID documents."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import coincurve
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from fastapi import FastAPI

from appview import auth
from core.crypto import PublicKey
from core.identity import IdentityResolver
from core.outbound import Outbound

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
SERVICE_DID = "did:web:appview.test"
PLC = "https://plc.test"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64url(json.dumps(value).encode())


class Key:
    def __init__(self, curve: str) -> None:
        self.curve = curve
        if curve == "k256":
            self._k = coincurve.PrivateKey()
            compressed = self._k.public_key.format(compressed=True)
        else:
            self._p = ec.generate_private_key(ec.SECP256R1())
            compressed = self._p.public_key().public_bytes(serialization.Encoding.X962,
                                                           serialization.PublicFormat.CompressedPoint)
        self.public = PublicKey(curve, compressed)  # type: ignore[arg-type]

    @property
    def alg(self) -> str:
        return "ES256K" if self.curve == "k256" else "ES256"

    def sign(self, data: bytes, *, high_s: bool = False) -> bytes:
        if self.curve == "k256":
            sig = self._k.sign_recoverable(data)[:64]  # libsecp256k1: always low-S
            r, s = sig[:32], int.from_bytes(sig[32:], "big")
            n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
            return r + ((n - s) if high_s else s).to_bytes(32, "big")
        r, s = decode_dss_signature(self._p.sign(data, ec.ECDSA(hashes.SHA256())))
        low = min(s, P256_N - s)
        return r.to_bytes(32, "big") + (P256_N - low if high_s else low).to_bytes(32, "big")


def make_jwt(key: Key, iss: str, *, aud: str = SERVICE_DID, exp: float | None = None, lxm: str | None = None,
             header: dict[str, Any] | None = None, payload: dict[str, Any] | None = None,
             high_s: bool = False) -> str:
    now = int(time.time())
    h = header if header is not None else {"typ": "JWT", "alg": key.alg}
    p = payload if payload is not None else {"iat": now, "iss": iss, "aud": aud,
                                             "exp": exp if exp is not None else now + 60, "jti": "abc123"}
    if lxm is not None:
        p["lxm"] = lxm
    signed = f"{b64json(h)}.{b64json(p)}"
    return f"{signed}.{b64url(key.sign(signed.encode(), high_s=high_s))}"


def did_doc(did: str, key: Key | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": did, "alsoKnownAs": ["at://someone.test"], "verificationMethod": []}
    if key is not None:
        doc["verificationMethod"] = [{"id": did + "#atproto", "type": "Multikey", "controller": did,
                                      "publicKeyMultibase": key.public.multikey}]
    return doc


class FakePlc:
    """DID documents by DID; ``fetches`` counts every document served (to observe refreshes)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.fetches = 0
        self.down = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.down:
            raise httpx.ConnectError("plc is down")
        doc = self.docs.get(request.url.path.lstrip("/"))
        return httpx.Response(200, json=doc) if doc is not None else httpx.Response(404)

    def resolver(self) -> IdentityResolver:
        return IdentityResolver(PLC, client=Outbound(transport=httpx.MockTransport(self.handler)))


def plc_did(n: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "did:plc:" + "".join(alphabet[(n >> (5 * i)) % 32] for i in range(24))


def test_app(verifier: auth.ServiceAuthVerifier) -> FastAPI:
    """Routes exercising both dependencies on both surfaces."""
    app = FastAPI()
    app.state.auth = verifier
    auth.install_errors(app)

    @app.get("/whoami")
    async def whoami(viewer: auth.OptionalViewer) -> dict[str, str | None]:
        return {"did": viewer.did if viewer else None}

    @app.get("/me")
    async def me(viewer: auth.RequiredViewer) -> dict[str, str | None]:
        return {"did": viewer.did}

    @app.get("/did")
    async def did(viewer_did: auth.OptionalViewerDid) -> dict[str, str | None]:
        return {"did": viewer_did}

    @app.get("/xrpc/fm.plyr.test.whoami")
    async def xrpc_whoami(viewer: auth.OptionalViewer) -> dict[str, str | None]:
        return {"did": viewer.did if viewer else None}

    return app


test_app.__test__ = False  # type: ignore[attr-defined]  # a factory, not a pytest test
