"""Builders of signed, chained `com.atproto.sync.subscribeRepos` frames, and a network-free resolver.

A :class:`Net` hands out firehose seqs and TIDs; each :class:`Repo` has a k256 key and a did:plc and
keeps its chain (last rev, MST root, record CIDs), so that consecutive ``repo.commit(...)`` frames link
up exactly as a Sync 1.1 PDS would emit them (``since`` = previous rev, ``prevData`` = previous data
CID). Every knob that a test may want to break (``key``, ``since``, ``prev_data``, ``data``, ``rev``)
is a keyword; ``advance=False`` builds a frame without moving the repo's own chain (forgeries).

Each repo keeps a real MST (spec/repository: keys sorted, layer = leading zero bits of sha256(key) / 2,
fanout 4) over its current records, so ``data`` is the true root and each commit's CAR carries, like a PDS's,
the commit block, every MST node new in this commit, every node on the path of each op's key (a plain
key-order walk down to the bottom: a superset of what any lookup needs) and the new record blocks. The
builder is written independently of ``ingester.decode.mst`` on purpose: it checks that code, and its root
CIDs are pinned by the atproto interop vectors (tests/ingester/test_mst.py).
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import cbor2
import coincurve
import httpx
import libipld

from core.crypto import PublicKey
from core.identity import IdentityResolver
from core.outbound import Outbound

PLC_URL = "https://plc.test"
PDS_URL = "https://pds.test"
B32 = "234567abcdefghijklmnopqrstuvwxyz"

Action = Literal["create", "update", "delete"]
Op = tuple[Action, str, dict[str, Any] | None]  # (action, "collection/rkey", record or None for delete)

_UNSET: Any = object()  # "derive from the repo's chain" (None is a meaningful override for since/prevData)


# ---------------------------------------------------------------- encoding


def enc(obj: Any) -> bytes:
    """DAG-CBOR for envelopes, commit blocks and CAR headers (cbor2 canonical = DAG-CBOR key order)."""
    return cbor2.dumps(obj, canonical=True)


def record_block(record: dict[str, Any]) -> bytes:
    """DAG-CBOR of a record. libipld, not cbor2: floats must be 64-bit (cbor2 would shrink them)."""
    return libipld.encode_dag_cbor(record)


def cid_of(block: bytes, codec: int = 0x71) -> bytes:
    """Binary CIDv1 (sha2-256) of a block."""
    return bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(block).digest()


def cid_str(cid: bytes) -> str:
    return libipld.encode_cid(cid)


def link(cid: bytes) -> cbor2.CBORTag:
    return cbor2.CBORTag(42, b"\x00" + cid)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def car(roots: Sequence[bytes], blocks: Sequence[tuple[bytes, bytes]]) -> bytes:
    header = enc({"version": 1, "roots": [link(r) for r in roots]})
    out = _varint(len(header)) + header
    for cid, data in blocks:
        out += _varint(len(cid) + len(data)) + cid + data
    return out


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tid(micros: int, clock_id: int = 0) -> str:
    """A TID: 53-bit microsecond timestamp and 10-bit clock id, base32-sortable, 13 chars."""
    v = (micros << 10) | (clock_id & 0x3FF)
    return "".join(B32[(v >> (5 * i)) & 31] for i in reversed(range(13)))


def frame(t: str, body: dict[str, Any]) -> bytes:
    """A regular (op 1) message frame of type `t` ("#commit", "#identity", …)."""
    return enc({"op": 1, "t": t}) + enc(body)


def error_frame(error: str, message: str | None = None) -> bytes:
    body: dict[str, Any] = {"error": error}
    if message is not None:
        body["message"] = message
    return enc({"op": -1}) + enc(body)


def info_frame(name: str = "OutdatedCursor", message: str | None = "cursor is older than the backfill window") -> bytes:
    return frame("#info", {"name": name, "message": message})


def seq_of(raw: bytes) -> int | None:
    """The seq of a well-formed frame (None for #info/error frames)."""
    seq = libipld.decode_dag_cbor_multi(raw)[1].get("seq")
    return seq if type(seq) is int else None


def rev_of(raw: bytes) -> str:
    """The rev of a well-formed #commit or #sync frame."""
    rev = libipld.decode_dag_cbor_multi(raw)[1]["rev"]
    assert isinstance(rev, str)
    return rev


def sign(key: coincurve.PrivateKey, data: bytes) -> bytes:
    """atproto signature: compact 64-byte r||s over sha256(data), low-S (libsecp256k1 normalises)."""
    return key.sign_recoverable(data)[:64]


def multikey(key: coincurve.PrivateKey) -> str:
    return PublicKey("k256", key.public_key.format()).multikey


def random_plc() -> str:
    return "did:plc:" + "".join(secrets.choice(B32) for _ in range(24))


# ---------------------------------------------------------------- MST


def key_layer(key: bytes) -> int:
    """MST layer of a key, the spec's way: count leading zero bits of sha256(key) two at a time."""
    layer = 0
    for byte in hashlib.sha256(key).digest():
        for shift in (6, 4, 2, 0):
            if (byte >> shift) & 3:
                return layer
            layer += 1
    return layer


def _prefix_len(a: bytes, b: bytes) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


class Mst:
    """The MST of a ``{"collection/rkey": record CID}`` map, built bottom-up from the sorted keys.

    ``root`` is the root node's CID, ``blocks`` maps every node's CID to its DAG-CBOR block.
    """

    def __init__(self, entries: Mapping[str, bytes]) -> None:
        self.items = sorted((k.encode(), v) for k, v in entries.items())
        self.layers = [key_layer(k) for k, _ in self.items]
        self.blocks: dict[bytes, bytes] = {}
        self._shape: dict[bytes, tuple[bytes | None, list[bytes], list[bytes | None]]] = {}
        self.root = self._node(0, len(self.items), max(self.layers, default=0))

    def _node(self, lo: int, hi: int, layer: int) -> bytes:
        """The node of `layer` over items[lo:hi] (all of layer <= `layer`); the empty root when lo == hi."""
        here = [i for i in range(lo, hi) if self.layers[i] == layer]
        bounds = [lo, *here, hi]
        subtrees = [self._node(a, b, layer - 1) if a < b else None
                    for a, b in zip([bounds[0]] + [i + 1 for i in here], bounds[1:], strict=True)]
        entries, keys, prev = [], [], b""
        for i, right in zip(here, subtrees[1:], strict=True):
            key, value = self.items[i]
            p = _prefix_len(prev, key)
            entries.append({"p": p, "k": key[p:], "v": link(value), "t": None if right is None else link(right)})
            keys.append(key)
            prev = key
        left = subtrees[0]
        block = enc({"l": None if left is None else link(left), "e": entries})
        cid = cid_of(block)
        self.blocks[cid] = block
        self._shape[cid] = (left, keys, subtrees[1:])
        return cid

    def path(self, key: str) -> list[bytes]:
        """CIDs of the nodes a key-order walk for `key` crosses, from the root down to where it stops."""
        k, out, cid = key.encode(), [], self.root
        while cid is not None:
            out.append(cid)
            left, keys, rights = self._shape[cid]
            i = bisect_left(keys, k)
            if i < len(keys) and keys[i] == k:
                break
            cid = left if i == 0 else rights[i - 1]
        return out


# ---------------------------------------------------------------- records


T0 = "2026-11-24T12:00:00.000Z"


def track(title: str = "song", **extra: Any) -> dict[str, Any]:
    return {"$type": "fm.plyr.track", "title": title, "artist": "artist", "fileType": "mp3",
            "audioUrl": "https://audio.plyr.fm/audio/x.mp3", "createdAt": T0, **extra}


def like(subject_uri: str, subject_cid: str = "bafyreiaaaa") -> dict[str, Any]:
    return {"$type": "fm.plyr.like", "subject": {"uri": subject_uri, "cid": subject_cid}, "createdAt": T0}


# ---------------------------------------------------------------- repos and the stream


class Net:
    """Shared firehose seq counter and TID clock for a set of repos (one upstream host)."""

    def __init__(self, first_seq: int = 1) -> None:
        self._seqs: Iterator[int] = itertools.count(first_seq)
        self._last_us = 0
        self.repos: list[Repo] = []

    def next_seq(self) -> int:
        return next(self._seqs)

    def next_tid(self) -> str:
        # Strictly increasing and close to now (the ingester refuses revs > 5 min in the future).
        self._last_us = max(self._last_us + 1, time.time_ns() // 1000)
        return tid(self._last_us)

    def repo(self, handle: str = "alice.test") -> Repo:
        r = Repo(self, handle)
        self.repos.append(r)
        return r

    def resolver(self) -> StaticResolver:
        """A resolver serving the current DID docs of every repo made so far."""
        res = StaticResolver()
        for r in self.repos:
            res.publish(r)
        return res


class Repo:
    def __init__(self, net: Net, handle: str) -> None:
        self.net = net
        self.handle = handle
        self.did = random_plc()
        self.key = coincurve.PrivateKey()
        self.rev: str | None = None  # last rev we emitted (advancing commits only)
        self.data: bytes | None = None  # last MST root (binary CID)
        self.cids: dict[str, bytes] = {}  # path → current record CID: the MST's contents
        self.mst = Mst({})
        self.pds = PDS_URL  # the `#atproto_pds` its DID document names

    # --- identity

    def doc(self) -> dict[str, Any]:
        return {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "id": self.did,
            "alsoKnownAs": [f"at://{self.handle}"],
            "verificationMethod": [{"id": f"{self.did}#atproto", "type": "Multikey", "controller": self.did,
                                    "publicKeyMultibase": multikey(self.key)}],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": self.pds}],
        }

    @property
    def did_key(self) -> str:
        return PublicKey("k256", self.key.public_key.format()).did_key

    def rotate_key(self) -> None:
        """New signing key (publish the doc again for resolvers to see it)."""
        self.key = coincurve.PrivateKey()

    def uri(self, path: str) -> str:
        return f"at://{self.did}/{path}"

    # --- frames

    def commit(
        self,
        ops: Sequence[Op],
        *,
        seq: int | None = None,
        key: coincurve.PrivateKey | None = None,
        rev: str | None = None,
        since: str | None = _UNSET,
        prev_data: bytes | None = _UNSET,
        data: bytes | None = None,
        advance: bool = True,
        time: str | None = None,
    ) -> bytes:
        """A signed `#commit` frame; by default it extends this repo's chain.

        `data` overrides the signed MST root (the CAR still carries the true tree's nodes).
        """
        rev = rev or self.net.next_tid()
        blocks: list[tuple[bytes, bytes]] = []
        wire_ops: list[dict[str, Any]] = []
        cids = dict(self.cids)
        for action, path, record in ops:
            op: dict[str, Any] = {"action": action, "path": path}
            old = cids.get(path) or cid_of(b"unknown " + path.encode())
            if action == "delete":
                op.update(cid=None, prev=link(old))
                cids.pop(path, None)
            else:
                assert record is not None, f"{action} needs a record"
                rb = record_block(record)
                blocks.append((cid_of(rb), rb))
                op["cid"] = link(cid_of(rb))
                if action == "update":
                    op["prev"] = link(old)
                cids[path] = cid_of(rb)
            wire_ops.append(op)
        mst = Mst(cids)
        data = data or mst.root
        nodes = dict.fromkeys(c for c in mst.blocks if c not in self.mst.blocks)  # new in this commit
        for _, path, _ in ops:
            nodes.update(dict.fromkeys(mst.path(path)))
        ccid, cblock = self._commit_block(rev, data, key)
        since = self.rev if since is _UNSET else since
        prev_data = self.data if prev_data is _UNSET else prev_data
        body = {
            "seq": self.net.next_seq() if seq is None else seq,
            "rebase": False,
            "tooBig": False,
            "repo": self.did,
            "commit": link(ccid),
            "rev": rev,
            "since": since,
            "blocks": car([ccid], [(ccid, cblock), *((c, mst.blocks[c]) for c in nodes), *blocks]),
            "ops": wire_ops,
            "blobs": [],
            "time": time or now_iso(),
            "prevData": None if prev_data is None else link(prev_data),
        }
        if advance:
            self.rev, self.data, self.cids, self.mst = rev, data, cids, mst
        return frame("#commit", body)

    def forged(self, ops: Sequence[Op], *, seq: int | None = None) -> bytes:
        """A well-chained commit signed by somebody else's key; the repo's own chain does not move."""
        return self.commit(ops, seq=seq, key=coincurve.PrivateKey(), advance=False)

    def sync(self, *, seq: int | None = None, data: bytes | None = None, advance: bool = True,
             rev: str | None = None, key: coincurve.PrivateKey | None = None) -> bytes:
        """A `#sync` frame: a signed commit (no ops) declaring the repo's current state.

        `data` defaults to the current MST root (nothing changed); pass another CID for a reset.
        """
        rev = rev or self.net.next_tid()
        data = data or self.data or self.mst.root
        ccid, cblock = self._commit_block(rev, data, key)
        body = {"seq": self.net.next_seq() if seq is None else seq, "did": self.did, "rev": rev,
                "blocks": car([ccid], [(ccid, cblock)]), "time": now_iso()}
        if advance:
            self.rev, self.data = rev, data
        return frame("#sync", body)

    def identity(self, *, seq: int | None = None, handle: str | None = _UNSET) -> bytes:
        body: dict[str, Any] = {"seq": self.net.next_seq() if seq is None else seq, "did": self.did,
                                "time": now_iso()}
        h = self.handle if handle is _UNSET else handle
        if h is not None:
            body["handle"] = h
        return frame("#identity", body)

    def account(self, active: bool, status: str | None = None, *, seq: int | None = None) -> bytes:
        body: dict[str, Any] = {"seq": self.net.next_seq() if seq is None else seq, "did": self.did,
                                "time": now_iso(), "active": active}
        if status is not None:
            body["status"] = status
        return frame("#account", body)

    def _commit_block(self, rev: str, data: bytes, key: coincurve.PrivateKey | None) -> tuple[bytes, bytes]:
        unsigned = {"did": self.did, "version": 3, "data": link(data), "rev": rev, "prev": None}
        block = enc({**unsigned, "sig": sign(key or self.key, enc(unsigned))})
        return cid_of(block), block


# ---------------------------------------------------------------- identity without a network


class StaticResolver(IdentityResolver):
    """An :class:`IdentityResolver` whose PLC is a dict: the real cache, parsing and error handling run,
    only the HTTP exchange is replaced (an ``httpx.MockTransport``). Unknown DIDs answer 404.

    ``fetches`` counts PLC requests per DID, so tests can assert how often the doc was (re)fetched.
    """

    def __init__(self, docs: dict[str, dict[str, Any] | bytes] | None = None, **kwargs: Any) -> None:
        self.docs: dict[str, dict[str, Any] | bytes] = dict(docs or {})  # bytes: served verbatim
        self.fetches_by_did: Counter[str] = Counter()
        client = Outbound(transport=httpx.MockTransport(self._serve))
        super().__init__(plc_url=PLC_URL, client=client, **kwargs)
        self._own_client = True  # close the mock client with the resolver

    def publish(self, repo: Repo) -> None:
        self.docs[repo.did] = repo.doc()

    def _serve(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/com.atproto.identity.resolveHandle"):
            # the PDS of the docs (PDS_URL) answering for its `.test` handles, as the local reference PDS does
            at = f"at://{request.url.params.get('handle')}"
            for did, doc in self.docs.items():
                if isinstance(doc, dict) and at in doc.get("alsoKnownAs", []):
                    return httpx.Response(200, json={"did": did})
            return httpx.Response(400, json={"error": "InvalidRequest", "message": "Unable to resolve handle"})
        did = request.url.path.lstrip("/")
        self.fetches_by_did[did] += 1
        doc = self.docs.get(did)
        if doc is None:
            return httpx.Response(404, json={"message": "DID not registered"})
        if isinstance(doc, bytes):
            return httpx.Response(200, content=doc, headers={"content-type": "application/json"})
        return httpx.Response(200, json=doc)
