"""atproto JSON data model → DAG-CBOR, to recompute a record's CID from its JSON (Jetstream).

Jetstream sends records as JSON with no signature or proof; the one thing a consumer can check is that
the JSON is the record whose CID the event names: convert back to DAG-CBOR (`{"$link"}` → tag-42 CID,
`{"$bytes"}` → byte string), encode, sha256, CIDv1 dag-cbor.

Two encoders, one result. libipld is fast but encodes any CID-*shaped* byte string as a tag-42 link, so
a `$bytes` value that happens to parse as a CID would come out as a link; it is only used when the
record holds no `$bytes`. Otherwise cbor2 encodes maps in the order we give it (keys pre-sorted the
DAG-CBOR way: shorter first, then bytewise) and floats as 64-bit, which is exactly DAG-CBOR.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import cbor2
import libipld

from ingester.decode.records import cid_for_block

__all__ = ["DagJsonError", "encode_record", "record_cid"]

_CID_LINK = 42
_MAX_DEPTH = 256  # deeper than any lexicon allows; keeps the walk clear of the recursion limit


class DagJsonError(ValueError):
    """The JSON is not a value of the atproto data model (so it has no DAG-CBOR form)."""


def _link(value: Any) -> bytes:
    """Binary CID of a `$link` string; atproto links are base32 CIDv1 (multibase prefix `b`)."""
    if type(value) is not str:
        raise DagJsonError(f"$link must be a string, got {type(value).__name__}")
    try:
        base, raw = libipld.decode_multibase(value)
        libipld.decode_cid(raw)  # parses: version, codec and multihash are well-formed
    except Exception as e:
        raise DagJsonError(f"$link {value[:80]!r} is not a CID: {e}") from e
    if base != "b" or not raw or raw[0] != 0x01:
        raise DagJsonError(f"$link {value[:80]!r} is not a base32 CIDv1")
    return raw


def _bytes(value: Any) -> bytes:
    if type(value) is not str:
        raise DagJsonError(f"$bytes must be a string, got {type(value).__name__}")
    try:
        # atproto writes base64 without padding; accept it padded too (the CID decides either way)
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError) as e:
        raise DagJsonError(f"$bytes is not base64: {e}") from e


def _key(k: str) -> tuple[int, bytes]:
    b = k.encode("utf-8")
    return len(b), b


def _to_cbor(value: Any, depth: int) -> Any:
    t = type(value)
    if t is str or t is int or t is bool or value is None or t is float:
        return value
    if depth > _MAX_DEPTH:
        raise DagJsonError("record nested too deeply")
    if t is list:
        return [_to_cbor(v, depth + 1) for v in value]
    if t is dict:
        if "$link" in value and len(value) == 1:
            return cbor2.CBORTag(_CID_LINK, b"\x00" + _link(value["$link"]))
        if "$bytes" in value and len(value) == 1:
            return _bytes(value["$bytes"])
        for k in value:
            if type(k) is not str:
                raise DagJsonError("map keys must be strings")
        return {k: _to_cbor(value[k], depth + 1) for k in sorted(value, key=_key)}
    raise DagJsonError(f"{t.__name__} is not in the atproto data model")


def _plain(value: Any, depth: int) -> bool:
    """True if no `$bytes` map occurs (then libipld encodes exactly); links are converted in place."""
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        v, d = stack.pop()
        if d > _MAX_DEPTH:
            raise DagJsonError("record nested too deeply")
        if type(v) is dict:
            if "$bytes" in v and len(v) == 1:
                return False
            stack.extend((x, d + 1) for x in v.values())
        elif type(v) is list:
            stack.extend((x, d + 1) for x in v)
    return True


def _links_to_bytes(value: Any) -> Any:
    t = type(value)
    if t is dict:
        if "$link" in value and len(value) == 1:
            return _link(value["$link"])
        return {k: _links_to_bytes(v) for k, v in value.items()}
    if t is list:
        return [_links_to_bytes(v) for v in value]
    return value


def _has_link(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            if "$link" in v and len(v) == 1:
                return True
            stack.extend(v.values())
        elif type(v) is list:
            stack.extend(v)
    return False


def encode_record(record: Any) -> bytes:
    """DAG-CBOR bytes of a JSON-model record. Raises DagJsonError when it has no DAG-CBOR form."""
    if type(record) is not dict:
        raise DagJsonError(f"record must be a map, got {type(record).__name__}")
    try:
        if _plain(record, 0):
            # No byte strings, so libipld's CID-shaped-bytes rule can only hit the links we put there.
            return libipld.encode_dag_cbor(_links_to_bytes(record) if _has_link(record) else record)
        return cbor2.dumps(_to_cbor(record, 0))
    except DagJsonError:
        raise
    except Exception as e:  # ints beyond 64 bits, lone surrogates, NaN, …
        raise DagJsonError(f"record has no DAG-CBOR encoding: {e}") from e


def record_cid(record: Any) -> str:
    """CIDv1 (dag-cbor, sha2-256) of a JSON-model record, as the PDS computed it."""
    return cid_for_block(encode_record(record))
