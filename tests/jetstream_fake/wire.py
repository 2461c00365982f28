"""Firehose frames → Jetstream events in the recorded v1 and v2 JSON shapes (sync.md §2.2–2.3).

Written independently of `ingester.decode` on purpose (own CAR walk, cbor2 for records), so a test that
feeds these frames to the ingester is not checking our decoder against itself. It follows what the real
server does (bluesky-social/jetstream `internal/subscribe/encoder.go`): one event per record op, the
record's CBOR rendered to the atproto JSON data model (map keys sorted, `$link`, `$bytes`), the CID
computed from the record block, `#identity`/`#account` (and on v2 `#sync`) wrapping the upstream event.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2
import libipld

V2_TYPE = "network.bsky.jetstream.subscribeEvents#"


@dataclass(frozen=True, slots=True)
class Upstream:
    """One Jetstream event before it gets its position: kind, DID, collection and the JSON bodies."""

    kind: str  # commit | identity | account | sync
    did: str
    collection: str | None
    commit: dict[str, Any] | None = None  # v1 `commit` object (rev, operation, collection, rkey, record?, cid?)
    wrapped: dict[str, Any] | None = None  # the upstream #identity/#account/#sync body, verbatim


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def car_blocks(car: bytes) -> dict[bytes, bytes]:
    """Blocks of a CAR v1 keyed by binary CID (CIDv1 sha2-256 only, which is all atproto writes)."""
    n, pos = _varint(car, 0)
    pos += n
    out: dict[bytes, bytes] = {}
    while pos < len(car):
        size, pos = _varint(car, pos)
        cid = car[pos:pos + 36]
        out[cid] = car[pos + 36:pos + size]
        pos += size
    return out


def _to_json(value: Any) -> Any:
    if isinstance(value, cbor2.CBORTag):
        assert value.tag == 42, value.tag
        return {"$link": libipld.encode_cid(value.value[1:])}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode().rstrip("=")}
    if isinstance(value, dict):
        return {k: _to_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    return value


def record_json(block: bytes) -> dict[str, Any]:
    return _to_json(cbor2.loads(block))  # type: ignore[no-any-return]


def block_cid(block: bytes) -> str:
    return libipld.encode_cid(bytes([0x01, 0x71, 0x12, 0x20]) + hashlib.sha256(block).digest())


def _json_safe(body: dict[str, Any]) -> dict[str, Any]:
    """An upstream event body (libipld-decoded) as JSON; bytes fields (a #sync's CAR) as `$bytes`."""
    return {k: ({"$bytes": base64.b64encode(v).decode().rstrip("=")} if isinstance(v, bytes) else v)
            for k, v in body.items()}


def convert(frame: bytes) -> list[Upstream]:
    """The Jetstream events one firehose frame becomes (empty for frames Jetstream does not carry)."""
    header, body = libipld.decode_dag_cbor_multi(frame)
    t = header.get("t")
    if header.get("op") != 1:
        return []
    if t == "#commit":
        blocks = car_blocks(body["blocks"])
        out = []
        for op in body["ops"]:
            collection, _, rkey = op["path"].partition("/")
            commit: dict[str, Any] = {"rev": body["rev"], "operation": op["action"], "collection": collection,
                                      "rkey": rkey}
            if op["action"] != "delete":
                block = blocks[op["cid"]]
                commit["record"] = record_json(block)
                commit["cid"] = block_cid(block)
            out.append(Upstream("commit", body["repo"], collection, commit=commit))
        return out
    kinds = {"#identity": "identity", "#account": "account", "#sync": "sync"}
    if t in kinds:
        return [Upstream(kinds[t], body["did"], None, wrapped=_json_safe(body))]
    return []


def wire_time(time_us: int) -> str:
    """v2 `time`: RFC 3339 UTC with exactly six fractional digits."""
    return datetime.fromtimestamp(time_us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def v1_json(ev: Upstream, time_us: int, seq: int) -> str | None:
    """The legacy `/subscribe` frame (v1 never carries #sync). `cursor` is what the v2 server adds."""
    if ev.kind == "sync":
        return None
    out: dict[str, Any] = {"did": ev.did, "time_us": time_us, "cursor": seq, "kind": ev.kind}
    out[ev.kind] = ev.commit if ev.kind == "commit" else ev.wrapped
    return _dumps(out)


def v2_json(ev: Upstream, time_us: int, seq: int) -> str:
    payload: dict[str, Any] = {"$type": V2_TYPE + ev.kind, "seq": seq, "did": ev.did, "time": wire_time(time_us)}
    if ev.kind == "commit":
        assert ev.commit is not None
        c = ev.commit
        payload.update(rev=c["rev"], operation=c["operation"], collection=c["collection"], rkey=c["rkey"])
        if "cid" in c:
            payload.update(cid=c["cid"], record=c["record"])
    else:
        payload[ev.kind] = ev.wrapped
    return _dumps({"$type": "message", "payload": payload})
