"""Labels (https://atproto.com/specs/label): what is signed, whose key signs it, and what hides what.

A label is signed over the DAG-CBOR encoding of the label object without `sig` (and without
`$type`), hashed with SHA-256, by the key the labeler's DID document names `#atproto_label` —
never its repo signing key `#atproto`. The labeler's endpoint is its `#atproto_labeler` service.

The read-side policy (which values hide a record on which surface) lives here too, because both
the appview's SQL and anyone reading the schema need the same vocabulary (plyr.md §3.4).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Final

import libipld

from core.crypto import PublicKey
from core.identity import id_matches, verification_key

LABEL_VERSION: Final = 1
MAX_VAL_BYTES: Final = 128

# Values that remove a record from every surface (feeds, search, lists, counts, views).
HIDE_EVERYWHERE: Final[tuple[str, ...]] = ("!takedown", "!hide", "!suspend", "copyright-violation")
# Adult values: hidden on LIST surfaces (feeds, search, top, for-you, radio) unless the viewer opted
# in or owns the record; shown on VIEW surfaces (artist page, album, playlist, a user's likes).
ADULT: Final[tuple[str, ...]] = ("sexual", "porn", "nudity", "graphic-media")


class LabelError(ValueError):
    """A label that cannot be encoded or checked; the message says why."""


def signing_bytes(label: dict[str, Any]) -> bytes:
    """The DAG-CBOR bytes a labeler signs: the label without `sig` and `$type`."""
    unsigned = {k: v for k, v in label.items() if k not in ("sig", "$type")}
    try:
        return bytes(libipld.encode_dag_cbor(unsigned))
    except Exception as e:  # libipld raises ValueError/TypeError/OverflowError on non-IPLD values
        raise LabelError(f"label is not encodable as DAG-CBOR: {e}") from e


def digest(label: dict[str, Any]) -> str:
    """sha256 hex of the whole label (signature included): identical labels, identical digests."""
    try:
        data = bytes(libipld.encode_dag_cbor(label))
    except Exception:
        data = repr(sorted(label.items(), key=lambda kv: str(kv[0]))).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def to_json(value: Any) -> Any:
    """DAG-CBOR data model → DAG-JSON shape (bytes as {"$bytes": base64 without padding})."""
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode().rstrip("=")}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def label_key(did: str, doc: dict[str, Any]) -> PublicKey | None:
    """The `#atproto_label` verification key of a labeler's DID document, or None."""
    methods = doc.get("verificationMethod")
    for vm in methods if isinstance(methods, list) else []:
        if isinstance(vm, dict) and id_matches(vm.get("id"), did, "#atproto_label"):
            return verification_key(vm)
    return None


def labeler_endpoint(did: str, doc: dict[str, Any]) -> str | None:
    """The `#atproto_labeler` service endpoint (type AtprotoLabeler) of a DID document, or None."""
    services = doc.get("service")
    for svc in services if isinstance(services, list) else []:
        if (
            isinstance(svc, dict)
            and id_matches(svc.get("id"), did, "#atproto_labeler")
            and isinstance(svc.get("serviceEndpoint"), str)
        ):
            return str(svc["serviceEndpoint"])
    return None
