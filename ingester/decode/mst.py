"""Merkle Search Tree proofs: does the signed MST root really hold what a commit's `ops` claim?

The `ops` list of a `#commit` is not signed; only the commit block (whose `data` is the MST root) is. So every
in-scope op is checked against the MST nodes shipped in the frame's CAR, as indigo's `CheckOp` does: a
create/update key must map to the op's CID, a deleted key must be provably absent.

MST rules (spec/repository "MST Structure"): a node is `{l, e: [{p, k, v, t}]}`; keys are `p` bytes of the
previous key of the node plus `k`, strictly increasing; a key's layer is the number of leading zero bits of
sha256(key) divided by 2; every key of a node has the node's layer and a child link points one layer down.
A key is therefore looked for only in the node of its own layer: a walk never needs nodes below that, which is
exactly what the height-based lookup of indigo (`mst/node.go` getCID) reads.

Nodes are hash-checked against their CIDs (the CAR is not trusted) and their structure is verified on the way.
A node needed by the walk but absent from the CAR raises MissingBlock: a PDS ships every node on the path of
every changed key, so `prove_ops` reports it as a proof failure (indigo's `ErrPartialTree` fails the op too).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping

import libipld

from ingester.decode.cbor_scan import ItemBudget, scan

__all__ = ["MissingBlock", "MstError", "key_layer", "lookup", "prove_ops"]

_NODE_CID_PREFIX = bytes([0x01, 0x71, 0x12, 0x20])  # CIDv1, dag-cbor, sha2-256, 32 bytes
MAX_DEPTH = 128  # sha256 has 256 bits: no key can sit above layer 128
# A node is {l, e: [{p, k, v, t}…]}: 11 items per entry; 20,000 allows ~1,800 entries (fanout is 4 on average).
NODE_MAX_ITEMS = 20_000
NODE_MAX_DEPTH = 6

Op = tuple[str, str, bytes | None]  # (action, "collection/rkey", raw CID of the new record or None for delete)


class MissingBlock(KeyError):
    """An MST node the walk needs is not in the block map."""

    def __init__(self, cid: bytes) -> None:
        super().__init__(cid)
        self.cid = cid

    def __str__(self) -> str:
        return f"MST node {_cid_str(self.cid)} is missing from the CAR"


class MstError(ValueError):
    """An MST node is malformed, does not hash to its CID, or breaks the tree's layer/order rules."""


class _Node:
    __slots__ = ("keys", "layer", "left", "rights", "values")

    def __init__(self, left: bytes | None, keys: list[bytes], values: list[bytes], rights: list[bytes | None],
                 layer: int | None) -> None:
        self.left, self.keys, self.values, self.rights, self.layer = left, keys, values, rights, layer


def key_layer(key: bytes) -> int:
    """MST layer of a key: leading zero bits of sha256(key), counted in 2-bit chunks (fanout 4)."""
    digest = hashlib.sha256(key).digest()
    if digest[0] > 0x3F:  # 3 keys in 4: layer 0
        return 0
    return (256 - int.from_bytes(digest, "big").bit_length()) >> 1


def _cid_str(cid: bytes) -> str:
    try:
        return libipld.encode_cid(cid)
    except Exception:
        return cid.hex()


def _parse(cid: bytes, blocks: Mapping[bytes, bytes], layer: int | None, budget: ItemBudget | None = None) -> _Node:
    """Fetch, hash-check, decode and verify one node. `layer`: what the parent implies (None at the root);
    `budget`: the items the rest of the frame may still decode."""
    block = blocks.get(cid)
    if block is None:
        raise MissingBlock(cid)
    if cid[:4] != _NODE_CID_PREFIX or len(cid) != 36 or hashlib.sha256(block).digest() != cid[4:]:
        raise MstError(f"MST node {_cid_str(cid)} does not hash to its CID")
    try:
        scan(block, max_items=NODE_MAX_ITEMS, max_depth=NODE_MAX_DEPTH, budget=budget, shaped=True)
        obj = libipld.decode_dag_cbor(block)
    except Exception as err:  # CborLimit, ValueError, RecursionError
        raise MstError(f"MST node {_cid_str(cid)} is not DAG-CBOR: {err}") from err
    entries = obj.get("e") if type(obj) is dict else None
    if type(entries) is not list:
        raise MstError(f"MST node {_cid_str(cid)} is not a {{l, e}} map")
    left = obj.get("l")
    if left is not None and type(left) is not bytes:
        raise MstError(f"MST node {_cid_str(cid)}: l must be a CID link or null")
    keys: list[bytes] = []
    values: list[bytes] = []
    rights: list[bytes | None] = []
    prev = b""
    sha256 = hashlib.sha256
    for e in entries:  # the hot loop of the proof: inlined checks and key_layer
        if type(e) is not dict:
            raise MstError(f"MST node {_cid_str(cid)}: entry is not a map")
        p, k, v, t = e.get("p"), e.get("k"), e.get("v"), e.get("t")
        if (type(p) is not int or type(k) is not bytes or type(v) is not bytes or p < 0 or p > len(prev)
                or (t is not None and type(t) is not bytes)):
            raise MstError(f"malformed MST entry in node {_cid_str(cid)}")
        key = prev[:p] + k if p else k
        if key <= prev:  # also rejects the empty key (prev starts as b"")
            raise MstError(f"MST keys out of order in node {_cid_str(cid)}")
        digest = sha256(key).digest()
        here = 0 if digest[0] > 0x3F else (256 - int.from_bytes(digest, "big").bit_length()) >> 1
        if layer is None:
            layer = here
        elif here != layer:
            raise MstError(f"MST key {key!r} of layer {here} in a node of layer {layer}")
        keys.append(key)
        values.append(v)
        rights.append(t)
        prev = key
    if layer == 0 and (left is not None or any(rights)):
        raise MstError(f"MST node {_cid_str(cid)} of layer 0 links to a lower layer")
    if not keys and left is None and layer is not None:
        raise MstError(f"empty intermediate MST node {_cid_str(cid)}")  # only an empty root may be bare
    return _Node(left, keys, values, rights, layer)


def _lookup(root: bytes, key: bytes, blocks: Mapping[bytes, bytes], cache: dict[bytes, _Node],
            budget: ItemBudget | None = None) -> bytes | None:
    target = key_layer(key)
    cid, layer = root, None  # layer the next node must have (None: the root defines its own)
    for _ in range(MAX_DEPTH + 1):
        node = cache.get(cid)
        if node is None:
            node = cache[cid] = _parse(cid, blocks, layer, budget)
        elif layer is not None and node.layer != layer:  # a node reached at another layer than before
            raise MstError(f"MST node {_cid_str(cid)} linked at layers {node.layer} and {layer}")
        if node.layer is None:  # bare root: empty tree, or a (non-canonical) root holding only `l`
            if node.left is None:
                return None
            raise MstError("MST root is an empty node pointing to a subtree")
        if target > node.layer:
            return None  # the key would sit above this node: not in the tree
        i = bisect_left(node.keys, key)
        if target == node.layer:
            return node.values[i] if i < len(node.keys) and node.keys[i] == key else None
        child = node.left if i == 0 else node.rights[i - 1]
        if child is None:
            return None
        cid, layer = child, node.layer - 1
    raise MstError("MST is deeper than any key layer allows")


def lookup(root: bytes, key: str, blocks: Mapping[bytes, bytes]) -> bytes | None:
    """The value CID at `key` ("<collection>/<rkey>") in the MST rooted at `root`, or None if provably absent.

    Raises MissingBlock if a node on the walk is not in `blocks`, MstError if one is invalid.
    """
    return _lookup(root, key.encode(), blocks, {})


def prove_ops(root: bytes, blocks: Mapping[bytes, bytes], ops: Iterable[Op],
              budget: ItemBudget | None = None) -> str | None:
    """None if every op holds in the signed MST, else the reason for the first one that does not.

    create/update: the key must map to the op's CID; delete: the key must be absent. A node missing from
    `blocks` or an invalid node fails the proof (we cannot tell the op is genuine).
    """
    cache: dict[bytes, _Node] = {}  # ops of one commit share their upper nodes
    for action, path, cid in ops:
        try:
            found = _lookup(root, path.encode(), blocks, cache, budget)
        except (MissingBlock, MstError) as e:
            return f"{action} {path}: cannot prove against the signed MST: {e}"
        if action == "delete":
            if found is not None:
                return f"delete {path}: the key is still in the signed MST"
        elif found is None:
            return f"{action} {path}: the key is not in the signed MST"
        elif found != cid:
            return (f"{action} {path}: the signed MST maps the key to {_cid_str(found)}, "
                    f"not to the op's {_cid_str(cid or b'')}")
    return None
