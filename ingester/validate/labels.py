"""Stage ③ for labels: the shape of `com.atproto.label.defs#label` (v1), checked before the signature.

Returns None for a well-formed label, else a short reason. Never raises on any input value.
"""

from __future__ import annotations

from typing import Any

from core import syntax
from core.labels import LABEL_VERSION, MAX_VAL_BYTES


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def check_label(label: Any) -> str | None:
    if type(label) is not dict:
        return f"label must be a map, got {type(label).__name__}"
    if _has_nul(label):
        return "string contains U+0000"
    ver = label.get("ver")
    if type(ver) is not int or ver != LABEL_VERSION:
        return f"ver must be {LABEL_VERSION}, got {ver!r:.40}"
    src = label.get("src")
    if type(src) is not str or not syntax.is_did(src):
        return "src: not a DID"
    uri = label.get("uri")
    if type(uri) is not str or not (syntax.is_at_uri(uri) or (uri.startswith("did:") and syntax.is_did(uri))):
        return "uri: neither an at:// URI nor a DID"
    cid = label.get("cid")
    if cid is not None and (type(cid) is not str or not syntax.is_cid(cid)):
        return "cid: not a CID string"
    val = label.get("val")
    if type(val) is not str or not val:
        return "val: not a non-empty string"
    if len(val.encode("utf-8", "surrogatepass")) > MAX_VAL_BYTES:
        return f"val: longer than {MAX_VAL_BYTES} bytes"
    neg = label.get("neg")
    if neg is not None and type(neg) is not bool:
        return "neg: not a boolean"
    for key in ("cts", "exp"):
        value = label.get(key)
        if (key == "cts" or value is not None) and (type(value) is not str or not syntax.is_datetime(value)):
            return f"{key}: not a datetime"
    sig = label.get("sig")
    if type(sig) is not bytes:
        return "sig: missing or not bytes"
    return None
