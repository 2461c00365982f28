"""A whole repository (a `com.atproto.sync.getRepo` CAR) → its signed commit and in-scope records.

The MST is walked from the signed root, every node hash-checked and its layer/order rules verified on the way
(the CAR is not trusted: blocks may come in any order, with duplicates or extras). Keys are sorted by path, so
the in-scope collections form one contiguous key range: subtrees entirely outside it are never read. The
account's Bluesky profile (`app.bsky.actor.profile/self`) is a second, one-key range: one root-to-leaf path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import libipld

from core.events import BSKY_PROFILE_PATH, IN_SCOPE_PREFIXES
from ingester.decode.car import CarError, read_car
from ingester.decode.frames import MAX_RECORD_BYTES, FrameError, commit_object, unsigned_bytes
from ingester.decode.mst import MAX_DEPTH, MissingBlock, MstError, _parse
from ingester.decode.records import RecordError, block_matches_cid, decode_record

__all__ = ["RepoError", "RepoRecord", "RepoSnapshot", "load_repo", "walk_mst"]


class RepoError(ValueError):
    """The bytes are not a valid repository CAR for the requested DID."""


@dataclass(frozen=True, slots=True)
class RepoRecord:
    cid: str
    record: dict[str, Any] | None  # None when the block is not a valid record (see `error`)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RepoSnapshot:
    did: str
    rev: str
    commit_cid: str
    data_cid: str
    signed_bytes: bytes  # DAG-CBOR of the commit block without `sig`
    sig: bytes
    records: dict[str, RepoRecord]  # "collection/rkey" → record, in-scope paths only


def _scope_range(prefixes: tuple[str, ...]) -> tuple[bytes, bytes]:
    """[lo, hi) covering every key starting with one of `prefixes` (a superset if they are not adjacent)."""
    encoded = sorted(p.encode() for p in prefixes)
    last = encoded[-1]
    return encoded[0], last[:-1] + bytes([last[-1] + 1])


def walk_mst(root: bytes, blocks: dict[bytes, bytes], lo: bytes, hi: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value CID) of the MST rooted at `root` with lo <= key < hi, in key order.

    Raises MissingBlock when a node the walk needs is absent, MstError when a node is invalid.
    """
    out: list[tuple[bytes, bytes]] = []
    # Recursion-free in-order traversal: children and entries are pushed in reverse order. A node item is
    # (cid, expected layer, lower bound, upper bound, depth): its keys must lie strictly between the keys
    # around the link that led to it.
    work: list[tuple[str, Any]] = [("node", (root, None, None, None, 0))]
    while work:
        kind, item = work.pop()
        if kind == "entry":
            out.append(item)
            continue
        cid, layer, lower, upper, depth = item
        if depth > MAX_DEPTH:
            raise MstError("MST is deeper than any key layer allows")
        node = _parse(cid, blocks, layer)
        if node.layer is None:  # bare root: the empty tree
            if node.left is not None:
                raise MstError("MST root is an empty node pointing to a subtree")
            continue
        keys = node.keys
        if keys and ((lower is not None and keys[0] <= lower) or (upper is not None and keys[-1] >= upper)):
            raise MstError("MST keys out of order across nodes")
        child_layer = node.layer - 1
        n = len(keys)
        for i in range(n, -1, -1):  # reverse: the stack pops the leftmost first
            if i < n and lo <= keys[i] < hi:
                work.append(("entry", (keys[i], node.values[i])))
            child = node.left if i == 0 else node.rights[i - 1]
            if child is None:
                continue
            c_lo = lower if i == 0 else keys[i - 1]
            c_hi = upper if i == n else keys[i]
            if (c_hi is not None and c_hi <= lo) or (c_lo is not None and c_lo >= hi):
                continue  # the whole subtree is out of scope
            work.append(("node", (child, child_layer, c_lo, c_hi, depth + 1)))
    return out


def _commit(blocks: dict[bytes, bytes], cid: bytes, did: str) -> tuple[dict[str, Any], bytes]:
    try:
        obj = commit_object(blocks, cid, did)
    except FrameError as e:
        raise RepoError(str(e)) from None
    if type(obj.get("rev")) is not str:
        raise RepoError("commit block needs a rev")
    return obj, unsigned_bytes(obj)


def load_repo(car: bytes, did: str, prefixes: tuple[str, ...] = IN_SCOPE_PREFIXES,
              paths: tuple[str, ...] = (BSKY_PROFILE_PATH,)) -> RepoSnapshot:
    """Parse a getRepo CAR; keep the records under `prefixes` and at the exact `paths`. Raises RepoError for
    anything malformed.

    A record block that does not hash to its CID fails the whole repo (the CAR is corrupt); a block that is
    not a valid record is returned with `error` set, so it can be logged as rejected.
    """
    try:
        roots, blocks = read_car(car)
    except CarError as e:
        raise RepoError(f"not a CAR: {e}") from e
    if not roots:
        raise RepoError("CAR has no root")
    commit, signed = _commit(blocks, roots[0], did)
    # MST keys never hold U+0000, so [key, key + NUL) is exactly that key.
    ranges = [_scope_range(prefixes), *((p.encode(), p.encode() + b"\x00") for p in paths)]
    try:
        entries = [e for lo, hi in ranges for e in walk_mst(commit["data"], blocks, lo, hi)]
    except (MissingBlock, MstError) as e:
        raise RepoError(f"invalid MST: {e}") from e
    records: dict[str, RepoRecord] = {}
    for key, cid in entries:
        path = key.decode("utf-8", "replace")
        collection, _, rkey = path.partition("/")
        if not collection.startswith(prefixes) and path not in paths:
            continue
        if not rkey or "/" in rkey:
            raise RepoError(f"MST key {path[:120]!r} is not <collection>/<rkey>")
        block = blocks.get(cid)
        if block is None:
            raise RepoError(f"record block for {path!r} is missing from the CAR")
        if not block_matches_cid(block, cid):
            raise RepoError(f"record block for {path!r} does not hash to its CID")
        cid_str = libipld.encode_cid(cid)
        if len(block) > MAX_RECORD_BYTES:
            records[path] = RepoRecord(cid_str, None, f"record block is {len(block)} bytes, over the limit")
            continue
        try:
            records[path] = RepoRecord(cid_str, decode_record(block))
        except RecordError as e:
            records[path] = RepoRecord(cid_str, None, f"undecodable record: {e}")
    return RepoSnapshot(did=did, rev=commit["rev"], commit_cid=libipld.encode_cid(roots[0]),
                        data_cid=libipld.encode_cid(commit["data"]), signed_bytes=signed, sig=commit["sig"],
                        records=records)
