"""A labeler in a test: a k256 `#atproto_label` key, its DID document, signed labels and
`subscribeLabels` frames (DAG-CBOR header + body, as a real labeler sends them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import coincurve
import libipld

from core.crypto import PublicKey
from core.labels import signing_bytes


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return iso(datetime.now(UTC) + delta)


def sign(key: coincurve.PrivateKey, data: bytes) -> bytes:
    """atproto signature: compact r||s over sha256(data), low-S (libsecp256k1 normalises)."""
    return key.sign_recoverable(data)[:64]


class Labeler:
    def __init__(self, did: str, endpoint: str = "http://127.0.0.1:1") -> None:
        self.did = did
        self.endpoint = endpoint
        self.key = coincurve.PrivateKey()  # the #atproto_label key
        self.seq = 0

    @property
    def multikey(self) -> str:
        return PublicKey("k256", self.key.public_key.format()).multikey

    @property
    def did_key(self) -> str:
        return PublicKey("k256", self.key.public_key.format()).did_key

    def doc(self) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "id": self.did,
            "alsoKnownAs": ["at://labeler.test"],
            "verificationMethod": [{"id": f"{self.did}#atproto_label", "type": "Multikey",
                                    "controller": self.did, "publicKeyMultibase": self.multikey}],
            "service": [{"id": "#atproto_labeler", "type": "AtprotoLabeler", "serviceEndpoint": self.endpoint}],
        }

    def label(self, uri: str, val: str, *, neg: bool = False, cts: str | None = None, exp: str | None = None,
              cid: str | None = None, key: coincurve.PrivateKey | None = None, src: str | None = None,
              **extra: Any) -> dict[str, Any]:
        lab: dict[str, Any] = {"ver": 1, "src": src or self.did, "uri": uri, "val": val, "cts": cts or now_iso()}
        if neg:
            lab["neg"] = True
        if exp is not None:
            lab["exp"] = exp
        if cid is not None:
            lab["cid"] = cid
        lab.update(extra)
        lab["sig"] = sign(key or self.key, signing_bytes(lab))
        return lab

    def frame(self, labels: list[dict[str, Any]], seq: int | None = None) -> bytes:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return bytes(libipld.encode_dag_cbor({"op": 1, "t": "#labels"})) + bytes(
            libipld.encode_dag_cbor({"seq": seq, "labels": labels}))


def info_frame(name: str = "OutdatedCursor") -> bytes:
    return bytes(libipld.encode_dag_cbor({"op": 1, "t": "#info"})) + bytes(
        libipld.encode_dag_cbor({"name": name, "message": "cursor too old"}))


def error_frame(error: str = "FutureCursor") -> bytes:
    return bytes(libipld.encode_dag_cbor({"op": -1})) + bytes(
        libipld.encode_dag_cbor({"error": error, "message": "cursor in the future"}))
