"""Jetstream JSON frames (v1 `/subscribe`, v2 `subscribeEvents`) → `core.events` frames.

Shapes: `shared/reference/sync.md` §2.2–2.3 and the `network.bsky.jetstream.subscribeEvents` lexicon.
One Jetstream commit event is one record op (a multi-op commit arrives as several events sharing `rev`).
Each event's position is its `seq` (v2) or `time_us` (v1): that is the source cursor.

Nothing here is signed, so the only check is the record's CID: the JSON is converted back to DAG-CBOR
and hashed (`ingester.decode.dagjson`); a mismatch is reported in `JetstreamCommit.cid_error`, not
raised, so the pipeline can log the event as rejected instead of losing it.
"""

from __future__ import annotations

import time as clock
from collections.abc import Container
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from core.events import AccountFrame, ErrorFrame, IdentityFrame, InfoFrame, RecordOp, Skipped, op_in_scope
from ingester.decode.dagjson import DagJsonError, record_cid

__all__ = ["JetstreamCommit", "JetstreamError", "JetstreamFrame", "JetstreamSync", "Version", "decode_jetstream"]

Version = Literal["v1", "v2"]
_V2_PREFIX = "network.bsky.jetstream.subscribeEvents#"
_ACTIONS = frozenset({"create", "update", "delete"})
MAX_FRAME_BYTES = 5 * 1024 * 1024  # a Jetstream event is ~0.5 KB; this is the firehose's frame cap
# orjson builds a Python object per JSON container: bound their number (a byte count, at C speed, that
# over-counts brackets inside strings, harmless at this size) before parsing anything.
MAX_CONTAINERS = 50_000
SEQ_MAX = 2**63 - 1
MAX_FUTURE_US = 10 * 60 * 1_000_000  # v1 time_us is a clock reading: more than 10 min ahead of ours is bogus


class JetstreamError(ValueError):
    """The frame is malformed; the reason says which field and why. `seq`: its seq (v2) or time_us (v1)
    when that could be read and is sound, else None."""

    seq: int | None = None


@dataclass(frozen=True, slots=True)
class JetstreamCommit:
    """One in-scope record op from Jetstream, unverified by nature."""

    seq: int  # v2 seq, or v1 time_us
    did: str
    rev: str
    time: str
    op: RecordOp
    cid_error: str | None = None  # why the record does not hash to `op.cid`; None when it does


@dataclass(frozen=True, slots=True)
class JetstreamSync:
    """A v2 `#sync` (the upstream repo was reset); unsigned here, so only a marker."""

    seq: int
    did: str
    rev: str | None
    time: str


JetstreamFrame = JetstreamCommit | JetstreamSync | IdentityFrame | AccountFrame | InfoFrame | ErrorFrame | Skipped


_EMPTY: frozenset[str] = frozenset()


def decode_jetstream(frame: bytes | str, version: Version, tracked: Container[str] = _EMPTY) -> JetstreamFrame:
    """Decode one (decompressed) Jetstream frame. Raises JetstreamError, and nothing else, on bad input.

    `tracked`: DIDs whose Bluesky profile events are in scope (everyone else's are skipped before any hashing).
    """
    data = frame.encode() if isinstance(frame, str) else frame
    if type(data) is not bytes:
        raise JetstreamError(f"frame must be bytes or text, got {type(frame).__name__}")
    if len(data) > MAX_FRAME_BYTES:
        raise JetstreamError(f"frame is {len(data)} bytes, over the {MAX_FRAME_BYTES} limit")
    if data.count(b"{") + data.count(b"[") > MAX_CONTAINERS:
        raise JetstreamError(f"frame refused before parsing: more than {MAX_CONTAINERS} JSON objects/arrays")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise JetstreamError(f"frame is not JSON: {e}") from e
    if type(obj) is not dict:
        raise JetstreamError(f"frame must be a JSON object, got {type(obj).__name__}")
    try:
        return _v2(obj, tracked) if version == "v2" else _v1(obj, tracked)
    except JetstreamError as e:
        e.seq = _sound_seq(obj, version)
        raise
    except Exception as e:  # belt and braces: callers rely on JetstreamError being the only failure
        error = JetstreamError(f"malformed frame: {e!r}")
        error.seq = _sound_seq(obj, version)
        raise error from e


def _sound_seq(obj: dict[str, Any], version: Version) -> int | None:
    try:
        if version == "v2":
            payload = obj.get("payload")
            return _seq(payload, "seq") if type(payload) is dict else None
        return _time_us(obj)
    except JetstreamError:
        return None


def _v2(obj: dict[str, Any], tracked: Container[str]) -> JetstreamFrame:
    kind = obj.get("$type")
    if kind == "error":
        return ErrorFrame(error=_str(obj, "error"), message=_opt_str(obj, "message"))
    if kind != "message":
        raise JetstreamError(f"frame $type must be 'message' or 'error', got {kind!r}")
    payload = obj.get("payload")
    if type(payload) is not dict:
        raise JetstreamError("message payload must be an object")
    t = payload.get("$type")
    if type(t) is not str or not t.startswith(_V2_PREFIX):
        raise JetstreamError(f"unknown payload $type {t!r}")
    t = t[len(_V2_PREFIX):]
    if t == "info":
        return InfoFrame(name=_str(payload, "name"), message=_opt_str(payload, "message"))
    seq, did, time = _seq(payload, "seq"), _str(payload, "did"), _str(payload, "time")
    if t == "commit":
        return _commit(payload, seq, did, time, tracked)
    if t == "identity":
        return _identity(_obj(payload, "identity"), seq, did, time)
    if t == "account":
        return _account(_obj(payload, "account"), seq, did, time)
    if t == "sync":
        rev = _obj(payload, "sync").get("rev")
        return JetstreamSync(seq=seq, did=did, rev=rev if type(rev) is str else None, time=time)
    return Skipped(seq=seq, did=did)  # a message kind added after us: keep the cursor moving


def _v1(obj: dict[str, Any], tracked: Container[str]) -> JetstreamFrame:
    seq, did = _time_us(obj), _str(obj, "did")
    time = _micros_to_iso(seq)
    kind = obj.get("kind")
    if kind == "commit":
        return _commit(_obj(obj, "commit"), seq, did, time, tracked)
    if kind == "identity":
        return _identity(_obj(obj, "identity"), seq, did, time)
    if kind == "account":
        return _account(_obj(obj, "account"), seq, did, time)
    if type(kind) is not str:
        raise JetstreamError(f"kind must be a string, got {kind!r}")
    return Skipped(seq=seq, did=did)


def _commit(c: dict[str, Any], seq: int, did: str, time: str, tracked: Container[str]) -> JetstreamCommit | Skipped:
    collection, rkey_ = _str(c, "collection"), c.get("rkey")
    # Bluesky profiles arrive for the whole network (Jetstream filters by collection, not by account).
    if not op_in_scope(collection, rkey_ if type(rkey_) is str else "", did in tracked):
        return Skipped(seq=seq, did=did)
    rev, rkey, action = _str(c, "rev"), _str(c, "rkey"), c.get("operation")
    if action not in _ACTIONS:
        raise JetstreamError(f"unknown operation {action!r}")
    if not rkey or "/" in rkey:
        raise JetstreamError(f"rkey {rkey!r} is not a record key")
    cid: str | None = None
    record: dict[str, Any] | None = None
    cid_error = None
    if action == "delete":
        if c.get("record") is not None or c.get("cid") is not None:
            raise JetstreamError(f"delete of {collection}/{rkey} carries a record or cid")
    else:
        cid = _str(c, "cid")
        record = c.get("record")
        if type(record) is not dict:
            raise JetstreamError(f"{action} of {collection}/{rkey}: record must be an object")
        cid_error = _check_cid(record, cid)
    op = RecordOp(action=action, collection=collection, rkey=rkey, cid=cid, prev=None, record=record)
    return JetstreamCommit(seq=seq, did=did, rev=rev, time=time, op=op, cid_error=cid_error)


def _check_cid(record: dict[str, Any], cid: str) -> str | None:
    try:
        computed = record_cid(record)
    except DagJsonError as e:
        return f"cid mismatch: record has no DAG-CBOR form ({e})"
    if computed != cid:
        return f"cid mismatch: event says {cid}, record hashes to {computed}"
    return None


def _identity(inner: dict[str, Any], seq: int, did: str, time: str) -> IdentityFrame:
    _same_did(inner, did)
    return IdentityFrame(seq=seq, did=did, handle=_opt_str(inner, "handle"), time=time)


def _account(inner: dict[str, Any], seq: int, did: str, time: str) -> AccountFrame:
    _same_did(inner, did)
    active = inner.get("active")
    if type(active) is not bool:
        raise JetstreamError(f"account active must be a boolean, got {active!r}")
    return AccountFrame(seq=seq, did=did, active=active, status=_opt_str(inner, "status"), time=time)


def _same_did(inner: dict[str, Any], did: str) -> None:
    if inner.get("did", did) != did:
        raise JetstreamError(f"wrapped event did {inner.get('did')!r} != envelope did {did!r}")


def _micros_to_iso(us: int) -> str:
    try:
        return datetime.fromtimestamp(us / 1e6, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return ""


def _obj(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if type(value) is not dict:
        raise JetstreamError(f"{key} must be an object, got {type(value).__name__}")
    return value


def _seq(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if type(value) is not int or not 0 < value <= SEQ_MAX:  # `type is` rejects bools
        raise JetstreamError(f"{key} must be a positive 64-bit integer (1..2^63-1), got {value!r:.40}")
    return value


def _time_us(obj: dict[str, Any]) -> int:
    """v1's cursor: a clock reading, so also bounded by ours (one far-future event would otherwise make
    every later one look like a replay)."""
    value = _seq(obj, "time_us")
    if value > clock.time_ns() // 1000 + MAX_FUTURE_US:
        raise JetstreamError(f"time_us {value} is more than 10 minutes in the future")
    return value


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if type(value) is not str:
        raise JetstreamError(f"{key} must be a string, got {value!r}")
    if "\x00" in value:  # Postgres text cannot hold U+0000: it would poison the whole batch
        raise JetstreamError(f"{key} contains U+0000")
    return value


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _str(body, key)
