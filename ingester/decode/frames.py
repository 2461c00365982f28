"""`com.atproto.sync.subscribeRepos` frame → `core.events` Frame.

Hot path: nearly all network frames are out-of-scope `#commit`s. libipld decodes header+body of a 4.5 KB
frame in ~0.8 µs (the CAR stays bytes), which is cheaper than even a `b"fm.plyr." in frame` scan (~1.5 µs
measured), and it gives us `seq`/`repo` for the `Skipped` marker the cursor logic needs. So: decode the
envelope, look at op paths, and only read the CAR when an op is in scope or the repo is tracked (tracked
repos need their signed commit even without in-scope ops, to keep the rev/data chain verified).
Only the commit block is signed, not `ops`: every in-scope op is proven against the signed MST root
(`ingester.decode.mst`) and a failure is reported in `Commit.proof_error`, not raised.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import libipld

from core.events import (
    AccountFrame,
    Commit,
    ErrorFrame,
    Frame,
    IdentityFrame,
    InfoFrame,
    RecordOp,
    Skipped,
    SyncFrame,
    in_scope,
    op_in_scope,
)
from ingester.decode.car import CarError, read_car
from ingester.decode.cbor_scan import CborLimit, ItemBudget, scan
from ingester.decode.mst import Op, prove_ops
from ingester.decode.records import RecordError, block_matches_cid, decode_record

__all__ = ["FrameError", "decode_frame"]

# Limits from spec/sync (Sync 1.1). The websocket layer enforces the frame cap first; it is checked again
# here for frames that reach us another way.
MAX_FRAME_BYTES = 5 * 1024 * 1024
MAX_BLOCKS_BYTES = 2_000_000
MAX_OPS = 200
MAX_RECORD_BYTES = 1_000_000
SEQ_MAX = 2**63 - 1  # the lexicon's integer is 64-bit signed, as is Postgres' bigint
# Work bounds, checked by a pre-scan before anything is decoded (`ingester.decode.cbor_scan`). A genuine
# envelope holds at most ~2,700 items (200 ops × 13); everything a frame decodes (envelope, commit block,
# MST nodes, records) shares one budget, so a frame can never cost more than ~0.3 s of CPU.
ENVELOPE_MAX_ITEMS = 20_000
ENVELOPE_MAX_DEPTH = 32
COMMIT_MAX_ITEMS = 1_000
FRAME_ITEM_BUDGET = 200_000
# Bytes of small blocks a frame may decode without the pre-scan (`ItemBudget.unscanned`): a genuine commit's
# blocks (commit, MST proof nodes, records) take a few KB. At most this many more items per frame.
FRAME_UNSCANNED_BYTES = 64_000

_EMPTY: frozenset[str] = frozenset()


class FrameError(ValueError):
    """The frame is malformed; the reason says which field and why. `seq`: the frame's seq when it could
    be read and is in range (the cursor may move past a rejected frame), else None."""

    seq: int | None = None


def decode_frame(frame: bytes, tracked: Container[str] = _EMPTY) -> Frame:
    """Decode one websocket frame. Raises FrameError (and nothing else) on any malformed input.

    `tracked`: DIDs whose commits must be fully decoded even when no op is in scope.
    """
    header, body = _envelope(frame)
    budget = ItemBudget(FRAME_ITEM_BUDGET, FRAME_UNSCANNED_BYTES)  # for the blocks inside (commit, MST, records)
    t = header.get("t")
    try:
        return _dispatch(header.get("op"), t, body, tracked, budget)
    except FrameError as e:
        e.seq = _seq_or_none(body)
        raise
    except Exception as e:  # belt and braces: callers rely on FrameError being the only failure mode
        error = FrameError(f"malformed {t!r} frame: {e!r}")
        error.seq = _seq_or_none(body)
        raise error from e


def frame_seq(frame: bytes) -> int | None:
    """A frame's seq, or None when it has none or is malformed; never raises. Read only from a source that
    started at the live tip and has committed nothing yet: where it resumes if it dies before its first commit."""
    try:
        return _seq_or_none(_envelope(frame)[1])
    except FrameError:
        return None


def _envelope(frame: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """A frame's header and body maps, bounded before decoding; raises FrameError."""
    if type(frame) is not bytes:
        raise FrameError(f"frame must be bytes, got {type(frame).__name__}")
    if len(frame) > MAX_FRAME_BYTES:
        raise FrameError(f"frame is {len(frame)} bytes, over the {MAX_FRAME_BYTES} limit")
    # The two maps' shapes are checked below: a frame too short to pass the item limit (the hot path,
    # out-of-scope commits of a few KB) is not walked, which would cost it 3× the decode (`cbor_scan`).
    try:
        scan(frame, max_items=ENVELOPE_MAX_ITEMS, max_depth=ENVELOPE_MAX_DEPTH, max_objects=2, shaped=True)
    except CborLimit as e:
        raise FrameError(f"frame refused before decoding: {e}") from e
    try:
        parts = libipld.decode_dag_cbor_multi(frame)
    except Exception as e:  # ValueError on bad CBOR, RecursionError on deep nesting
        raise FrameError(f"frame is not DAG-CBOR: {e}") from e
    if len(parts) != 2:
        raise FrameError(f"frame must hold 2 DAG-CBOR objects (header, body), got {len(parts)}")
    header, body = parts
    if type(header) is not dict or type(body) is not dict:
        raise FrameError("frame header and body must be maps")
    return header, body


def _seq_or_none(body: dict[str, Any]) -> int | None:
    seq = body.get("seq")
    return seq if type(seq) is int and 0 < seq <= SEQ_MAX else None


def _dispatch(op: Any, t: Any, body: dict[str, Any], tracked: Container[str], budget: ItemBudget) -> Frame:
    if type(op) is not int:
        raise FrameError(f"header op must be an integer, got {op!r}")
    if op == -1:
        return ErrorFrame(error=_str(body, "error"), message=_opt_str(body, "message"))
    if op != 1:  # spec: ignore unknown ops
        return Skipped(seq=None, did=None)
    if type(t) is not str:
        raise FrameError(f"header t must be a string, got {t!r}")
    if t == "#commit":
        return _commit(body, tracked, budget)
    if t == "#identity":
        return IdentityFrame(seq=_seq(body), did=_str(body, "did"), handle=_opt_str(body, "handle"),
                             time=_str(body, "time"))
    if t == "#account":
        active = body.get("active")
        if type(active) is not bool:
            raise FrameError(f"#account active must be a boolean, got {active!r}")
        return AccountFrame(seq=_seq(body), did=_str(body, "did"), active=active,
                            status=_opt_str(body, "status"), time=_str(body, "time"))
    if t == "#sync":
        return _sync(body, budget)
    if t == "#info":
        return InfoFrame(name=_str(body, "name"), message=_opt_str(body, "message"))
    # unknown message type (or a removed one like #handle): skip, keeping seq for the cursor if present
    did = body.get("did", body.get("repo"))
    # (a seq out of 1..2^63-1 is ignored with the rest: it never reaches the cursor)
    return Skipped(seq=_seq_or_none(body), did=did if type(did) is str else None)


def _seq(body: dict[str, Any]) -> int:
    seq = body.get("seq")
    if type(seq) is not int or not 0 < seq <= SEQ_MAX:  # `type is` rejects bools, which are ints in Python
        raise FrameError(f"seq must be an integer in 1..2^63-1, got {seq!r:.40}")
    return seq


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if type(value) is not str:
        raise FrameError(f"{key} must be a string, got {value!r}")
    if "\x00" in value:  # Postgres text/jsonb cannot hold U+0000: it would poison the whole batch
        raise FrameError(f"{key} contains U+0000")
    return value


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and type(value) is not str:
        raise FrameError(f"{key} must be a string or null, got {value!r}")
    return None if value is None else _str(body, key)


def _opt_link(obj: dict[str, Any], key: str) -> bytes | None:
    value = obj.get(key)
    if value is not None and type(value) is not bytes:
        raise FrameError(f"{key} must be a CID link or null, got {type(value).__name__}")
    return value


def _blocks(body: dict[str, Any]) -> bytes:
    blocks = body.get("blocks")
    if type(blocks) is not bytes:
        raise FrameError(f"blocks must be bytes, got {type(blocks).__name__}")
    if len(blocks) > MAX_BLOCKS_BYTES:
        raise FrameError(f"blocks is {len(blocks)} bytes, over the {MAX_BLOCKS_BYTES} limit")
    return blocks


def _commit(body: dict[str, Any], tracked: Container[str], budget: ItemBudget) -> Commit | Skipped:
    seq = _seq(body)
    repo = _str(body, "repo")
    ops = body.get("ops")
    if type(ops) is not list:
        raise FrameError(f"ops must be a list, got {type(ops).__name__}")
    if len(ops) > MAX_OPS:
        raise FrameError(f"{len(ops)} ops, over the {MAX_OPS} limit")
    blocks = _blocks(body)
    # cheapest possible scope check first: no CAR, no CIDs, just the op paths
    scoped = False
    for op in ops:
        if type(op) is not dict:
            raise FrameError("each op must be a map")
        path = op.get("path")
        if type(path) is not str:
            raise FrameError(f"op path must be a string, got {path!r}")
        if in_scope(path.partition("/")[0]):
            scoped = True
    if not scoped and repo not in tracked:
        return Skipped(seq=seq, did=repo)

    rev = _str(body, "rev")
    commit = body.get("commit")
    if type(commit) is not bytes:
        raise FrameError("commit must be a CID link")
    roots, car_blocks = _car(blocks)
    if not roots or roots[0] != commit:
        raise FrameError("CAR root does not match the commit CID")
    signed_bytes, sig, data = _signed_commit(car_blocks, commit, repo, rev, budget)
    prev_data = _opt_link(body, "prevData")
    proven: list[Op] = []  # in-scope (action, path, cid): `ops` is unsigned, so each must hold in the MST
    record_ops = tuple(_ops(ops, car_blocks, proven, budget))
    return Commit(
        seq=seq,
        did=repo,
        rev=rev,
        since=_opt_str(body, "since"),
        commit_cid=libipld.encode_cid(commit),
        prev_data=libipld.encode_cid(prev_data) if prev_data is not None else None,
        data_cid=libipld.encode_cid(data),
        ops=record_ops,
        signed_bytes=signed_bytes,
        sig=sig,
        time=_str(body, "time"),
        proof_error=prove_ops(data, car_blocks, proven, budget) if proven else None,
    )


def _ops(ops: list[dict[str, Any]], blocks: dict[bytes, bytes], proven: list[Op],
         budget: ItemBudget) -> list[RecordOp]:
    """Check every op's shape (indigo parseCommitOps rules) and decode the in-scope ones.

    Appends each in-scope (action, path, raw cid) to `proven`, for the MST proof.
    """
    out: list[RecordOp] = []
    for op in ops:
        action, path = op.get("action"), op["path"]
        cid, prev = _opt_link(op, "cid"), _opt_link(op, "prev")
        if action == "create" or action == "update":
            if cid is None:
                raise FrameError(f"{action} op {path!r} has no cid")
            if action == "create" and prev is not None:
                raise FrameError(f"create op {path!r} has a prev")
        elif action == "delete":
            if cid is not None:
                raise FrameError(f"delete op {path!r} has a cid")
            # prev may be missing on legacy (pre-Sync-1.1) commits; tolerated for update/delete
        else:
            raise FrameError(f"unknown op action {action!r}")
        collection, _, rkey = path.partition("/")
        # Only commits of tracked repos (or of repos this commit makes tracked) get here: keep their profile.
        if not op_in_scope(collection, rkey, tracked=True):
            continue
        if not rkey or "/" in rkey or "\x00" in path:
            raise FrameError(f"op path {path!r} is not <collection>/<rkey>")
        proven.append((action, path, cid))
        record = None
        if cid is not None:
            block = blocks.get(cid)
            if block is None:
                raise FrameError(f"record block for {path!r} is missing from the CAR")
            if len(block) > MAX_RECORD_BYTES:
                raise FrameError(f"record block for {path!r} is {len(block)} bytes, over the limit")
            if not block_matches_cid(block, cid):
                raise FrameError(f"record block for {path!r} does not hash to its CID")
            try:
                record = decode_record(block, budget)
            except RecordError as e:
                raise FrameError(f"record {path!r}: {e}") from e
        out.append(RecordOp(
            action=action,
            collection=collection,
            rkey=rkey,
            cid=libipld.encode_cid(cid) if cid is not None else None,
            prev=libipld.encode_cid(prev) if prev is not None else None,
            record=record,
        ))
    return out


def _car(blocks: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    try:
        return read_car(blocks)
    except CarError as e:
        raise FrameError(f"blocks: {e}") from e


def commit_object(blocks: dict[bytes, bytes], cid: bytes, did: str,
                  budget: ItemBudget | None = None) -> dict[str, Any]:
    """The commit block `cid` of repo `did`, checked (present, hash, DAG-CBOR map, did, version 3, sig
    bytes, data link); FrameError says what is wrong. Shared by frames and getRepo snapshots."""
    block = blocks.get(cid)
    if block is None:
        raise FrameError("commit block is missing from the CAR")
    if not block_matches_cid(block, cid):
        raise FrameError("commit block does not hash to the commit CID")
    try:
        scan(block, max_items=COMMIT_MAX_ITEMS, max_depth=4, budget=budget, shaped=True)
        obj = libipld.decode_dag_cbor(block)
    except Exception as e:  # CborLimit, ValueError, RecursionError
        raise FrameError(f"commit block is not DAG-CBOR: {e}") from e
    if type(obj) is not dict:
        raise FrameError("commit block must be a map")
    if obj.get("did") != did:
        raise FrameError(f"commit is for {str(obj.get('did'))[:80]!r}, not {did}")
    version = obj.get("version")
    if type(version) is not int or version != 3:
        raise FrameError(f"commit version must be 3, got {version!r:.20}")
    if type(obj.get("sig")) is not bytes:
        raise FrameError("commit block has no sig bytes")
    if type(obj.get("data")) is not bytes:
        raise FrameError("commit block data must be a CID link")
    return obj


def unsigned_bytes(commit: dict[str, Any]) -> bytes:
    """What the signature covers: the DAG-CBOR of the commit without `sig`. Re-encoding is exact: libipld
    re-emits CID-shaped bytes (data, prev) as tag-42 links and the remaining fields are not bytes."""
    return libipld.encode_dag_cbor({k: v for k, v in commit.items() if k != "sig"})


def _signed_commit(blocks: dict[bytes, bytes], cid: bytes, did: str, rev: str,
                   budget: ItemBudget) -> tuple[bytes, bytes, bytes]:
    """Check the commit block and return (signed bytes, sig, raw data CID = the MST root)."""
    obj = commit_object(blocks, cid, did, budget)
    if obj.get("rev") != rev:
        raise FrameError(f"commit block rev {obj.get('rev')!r} != frame rev {rev!r}")
    return unsigned_bytes(obj), obj["sig"], obj["data"]


def _sync(body: dict[str, Any], budget: ItemBudget) -> SyncFrame:
    seq, did, rev = _seq(body), _str(body, "did"), _str(body, "rev")
    roots, blocks = _car(_blocks(body))
    if not roots:
        raise FrameError("#sync CAR has no root")
    signed_bytes, sig, data = _signed_commit(blocks, roots[0], did, rev, budget)
    return SyncFrame(seq=seq, did=did, rev=rev, commit_cid=libipld.encode_cid(roots[0]),
                     data_cid=libipld.encode_cid(data),
                     signed_bytes=signed_bytes, sig=sig, time=_str(body, "time"))
