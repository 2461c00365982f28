"""Record blocks: DAG-CBOR → atproto JSON data model, and block/CID hash checks.

libipld decodes CID links and byte strings to the same Python `bytes`, so it cannot tell `{"$link"}`
from `{"$bytes"}` (a blob's `ref` must come out as a link). cbor2 keeps tag 42 distinct, so records are
decoded with cbor2; libipld still runs first as the strict DAG-CBOR gate (sorted unique string keys, only
tag 42, no undefined, no indefinite lengths) because cbor2 happily decodes full CBOR.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import cbor2
import libipld

from ingester.decode.cbor_scan import ItemBudget, scan

__all__ = ["RecordError", "block_matches_cid", "cid_for_block", "decode_record"]

_DAG_CBOR = 0x71
_RAW = 0x55
_SHA256 = 0x12
_DAG_CBOR_SHA256_PREFIX = bytes([0x01, _DAG_CBOR, _SHA256, 0x20])
_CID_LINK = 42
# Work bounds checked before decoding (`ingester.decode.cbor_scan`): fm.plyr records hold tens of items; a
# long playlist a few thousand.
RECORD_MAX_ITEMS = 50_000
RECORD_MAX_DEPTH = 400  # cbor2 refuses deeper; too deep for a lexicon is the validator's call (kept as rejected)


class RecordError(ValueError):
    """The block is not a valid DAG-CBOR record (a map in the atproto data model)."""


def _tag_hook(tag: cbor2.CBORTag, immutable: bool) -> dict[str, str]:
    # cbor2 6.x signature (tag, immutable). libipld already rejected every tag but a valid 42, so anything
    # else reaching here means the two decoders disagree: refuse rather than guess.
    value = tag.value
    if tag.tag != _CID_LINK or type(value) is not bytes or not value or value[0] != 0:
        raise RecordError(f"unsupported CBOR tag {tag.tag}")
    # tag-42 payload = 0x00 multibase prefix + binary CID
    return {"$link": libipld.encode_cid(value[1:])}


def _b64(value: bytes) -> dict[str, str]:
    return {"$bytes": base64.b64encode(value).decode("ascii").rstrip("=")}


def _bytes_to_json(obj: dict[str, Any] | list[Any]) -> None:
    """Replace byte strings by `{"$bytes"}` in place (links are already dicts from the tag hook).

    In place because records are freshly decoded and unshared; rebuilding every container would double
    the allocation cost. Depth is bounded by cbor2's max_depth, well under the recursion limit.
    """
    items = obj.items() if type(obj) is dict else enumerate(obj)
    for key, value in items:
        t = type(value)
        if t is bytes:
            obj[key] = _b64(value)  # type: ignore[index]  # same-size assignment: safe while iterating
        elif t is dict or t is list:
            _bytes_to_json(value)


def _has_bytes(obj: dict[str, Any] | list[Any]) -> bool:
    for value in obj.values() if type(obj) is dict else obj:
        t = type(value)
        if t is bytes or ((t is dict or t is list) and _has_bytes(value)):  # type: ignore[arg-type]
            return True
    return False


def decode_record(block: bytes, budget: ItemBudget | None = None) -> dict[str, Any]:
    """Decode a record block to the atproto JSON data model.

    Links become `{"$link": "<base32 CID>"}`, byte strings `{"$bytes": "<base64, no padding>"}`.
    Floats are kept (DAG-CBOR allows them, atproto does not): lexicon validation rejects them later.
    Raises RecordError for anything that is not a strict DAG-CBOR map, or too big a structure to decode
    (`budget`: what the rest of the frame may still decode).
    """
    try:
        scan(block, max_items=RECORD_MAX_ITEMS, max_depth=RECORD_MAX_DEPTH, budget=budget)
        gate = libipld.decode_dag_cbor(block)
    except Exception as e:  # ValueError for bad CBOR, RecursionError for absurd nesting
        raise RecordError(f"record is not valid DAG-CBOR: {e}") from e
    if type(gate) is not dict:
        raise RecordError(f"record must be a map, got {type(gate).__name__}")
    if not _has_bytes(gate):
        # No links and no byte strings (most fm.plyr records: strongRef cids are strings): libipld's
        # output already is the JSON model, so skip the slower cbor2 pass.
        return gate
    try:
        record = cbor2.loads(block, tag_hook=_tag_hook)
    except RecordError:
        raise
    except Exception as e:  # cbor2 has a lower nesting cap (400) than libipld
        raise RecordError(f"record could not be decoded: {e}") from e
    if type(record) is not dict:  # unreachable if both decoders agree; cheap insurance
        raise RecordError("record must be a map")
    _bytes_to_json(record)
    return record


def cid_for_block(block: bytes) -> str:
    """CIDv1 (dag-cbor, sha2-256) string of a block, as a PDS would compute it for a record."""
    return libipld.encode_cid(_DAG_CBOR_SHA256_PREFIX + hashlib.sha256(block).digest())


def block_matches_cid(block: bytes, raw_cid: bytes) -> bool:
    """True iff `raw_cid` is a CIDv1 (dag-cbor or raw codec, sha2-256) whose digest is sha256(block).

    Anything else (other hashes, CIDv0, malformed CIDs) is False: atproto only writes sha2-256 CIDv1, and
    a block we cannot check must not be trusted.
    """
    if (
        type(raw_cid) is not bytes
        or len(raw_cid) != 36
        or raw_cid[0] != 0x01
        or raw_cid[1] not in (_DAG_CBOR, _RAW)
        or raw_cid[2] != _SHA256
        or raw_cid[3] != 0x20
    ):
        return False
    return hashlib.sha256(block).digest() == raw_cid[4:]
