"""Signed, chained `#commit` frames for a few hundred repos (used by bench/ingest.py).

Records come from `gen_dataset.py` (fm.plyr tracks, album lists, likes; cached in the work dir), plus, derived
from it with a fixed seed: comments (10 % of likes get one), track edits (`update`, 3 % of tracks) and unlikes
(`delete`, 3 % of likes). Each repo's ops are sorted by time and cut into commits: mostly one op per commit,
10 % carry 2-4 ops. Commits are interleaved across repos by time and given strictly increasing TID revs; each
commit's `since` is the repo's previous rev and `prevData` its previous MST root. Every commit block is signed
with the repo's own k256 key (coincurve, low-S compact r||s over the DAG-CBOR of the unsigned commit), and
`did_docs` maps each DID to a DID document carrying that key as a Multikey.
Frame layout: CAR = signed commit + the real MST nodes on each changed key's path + the record blocks.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import coincurve

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from gen_dataset import tid  # noqa: E402
from gen_frames import cid_bytes, enc, link, varint  # noqa: E402

from core.crypto import PublicKey  # noqa: E402
from tests.ingester.framekit import Mst  # noqa: E402  (the test suite's MST builder, spec layers/fanout)

Op = tuple[str, str, str, dict[str, Any] | None]  # (action, collection, rkey, record | None for delete)
WORDS = "nice loved this the drop at that bridge wow again more please what a mix".split()


@dataclass
class Workload:
    frames: list[bytes]
    did_docs: dict[str, dict[str, Any]]
    ops: int
    first: set[int] = field(default_factory=set)  # indexes of each repo's first commit (since = None)
    first_ops: int = 0
    commits_by_size: dict[int, int] = field(default_factory=dict)
    by_action: dict[str, int] = field(default_factory=dict)
    by_collection: dict[str, int] = field(default_factory=dict)


def ensure_dataset(workdir: Path, tracks: int) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"dataset-{tracks}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        subprocess.run([sys.executable, str(HERE / "gen_dataset.py"), "--tracks", str(tracks), "-o", str(tmp)],
                       check=True)
        tmp.rename(path)
    return path


def _did_doc(did: str, handle: str, key: coincurve.PrivateKey) -> dict[str, Any]:
    return {
        "id": did,
        "alsoKnownAs": [f"at://{handle}"],
        "verificationMethod": [{"id": f"{did}#atproto", "type": "Multikey", "controller": did,
                                "publicKeyMultibase": PublicKey("k256", key.public_key.format()).multikey}],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                     "serviceEndpoint": "http://127.0.0.1:2583"}],
    }


def _when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _iso(d: datetime) -> str:
    return d.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _repo_ops(dataset: Path, rng: random.Random) -> tuple[dict[str, list[tuple[str, Op]]], dict[str, str]]:
    """{did: [(sort time, op)]} and {did: handle}."""
    ops: dict[str, list[tuple[str, Op]]] = {}
    handles: dict[str, str] = {}
    with dataset.open() as f:
        for line in f:
            o = json.loads(line)
            if o["kind"] == "identity":
                handles[o["did"]] = o["handle"]
                continue
            did, coll, rkey, rec = o["did"], o["collection"], o["rkey"], o["record"]
            at = rec["createdAt"]
            mine = ops.setdefault(did, [])
            mine.append((at, ("create", coll, rkey, rec)))
            later = _iso(_when(at) + timedelta(hours=rng.uniform(1, 720)))
            if coll == "fm.plyr.track" and rng.random() < 0.03:
                mine.append((later, ("update", coll, rkey, {**rec, "title": rec["title"] + " (remaster)"})))
            elif coll == "fm.plyr.like":
                if rng.random() < 0.10:
                    comment = {"$type": "fm.plyr.comment", "subject": rec["subject"],
                               "text": " ".join(rng.choices(WORDS, k=rng.randint(2, 12))),
                               "timestampMs": rng.randrange(600_000), "createdAt": at}
                    ckey = tid(int(_when(at).timestamp() * 1e6), rng.getrandbits(10))
                    mine.append((at, ("create", "fm.plyr.comment", ckey, comment)))
                if rng.random() < 0.03:
                    mine.append((later, ("delete", coll, rkey, None)))
    return ops, handles


def _commits(ops: dict[str, list[tuple[str, Op]]], rng: random.Random) -> list[tuple[str, str, list[Op]]]:
    """(sort time, did, ops): one op per commit, 10 % of commits 2-4 ops (never one path twice)."""
    out: list[tuple[str, str, list[Op]]] = []
    for did, items in ops.items():
        items.sort(key=lambda x: x[0])
        i = 0
        while i < len(items):
            size = 1 if rng.random() >= 0.10 else rng.randint(2, 4)
            chunk: list[Op] = []
            paths: set[tuple[str, str]] = set()
            while i < len(items) and len(chunk) < size and (items[i][1][1], items[i][1][2]) not in paths:
                chunk.append(items[i][1])
                paths.add((items[i][1][1], items[i][1][2]))
                i += 1
            out.append((items[i - len(chunk)][0], did, chunk))
    out.sort(key=lambda c: (c[0], c[1]))
    return out


def build(workdir: Path, tracks: int, *, seed: int = 11) -> Workload:
    rng = random.Random(seed)
    repo_ops, handles = _repo_ops(ensure_dataset(workdir, tracks), rng)
    commits = _commits(repo_ops, rng)
    keys = {did: coincurve.PrivateKey(hashlib.sha256(f"bench-key-{seed}-{did}".encode()).digest())
            for did in repo_ops}
    docs = {did: _did_doc(did, handles[did], key) for did, key in keys.items()}
    heads: dict[str, tuple[str, bytes]] = {}  # did -> (rev, data root CID)
    trees: dict[str, dict[str, bytes]] = {}  # did -> {"collection/rkey": record CID}: the signed MST's content
    cids: dict[tuple[str, str, str], bytes] = {}  # current record CID per (did, collection, rkey)
    start_us = (time.time_ns() // 1000) - 3_600_000_000  # revs: an hour ago onwards, 10 µs apart
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    w = Workload([], docs, 0)
    for seq, (_, did, ops) in enumerate(commits, start=1):
        rev = tid(start_us + 10 * seq)
        blocks: list[tuple[bytes, bytes]] = []
        op_list = []
        for action, coll, rkey, rec in ops:
            path, key = f"{coll}/{rkey}", (did, coll, rkey)
            prev = cids.get(key)
            op: dict[str, Any] = {"action": action, "path": path, "cid": None, "prev": link(prev) if prev else None}
            if rec is not None:
                rb = enc(rec)
                cids[key] = cid_bytes(rb)
                blocks.append((cids[key], rb))
                op["cid"] = link(cids[key])
            else:
                cids.pop(key, None)
            op_list.append(op)
            w.by_action[action] = w.by_action.get(action, 0) + 1
            w.by_collection[coll] = w.by_collection.get(coll, 0) + 1
        tree = trees.setdefault(did, {})
        for op in op_list:
            if op["cid"] is None:
                tree.pop(op["path"], None)
            else:
                tree[op["path"]] = cids[(did, *op["path"].split("/", 1))]
        # A real MST over the repo's records; the CAR carries the nodes on every changed key's path,
        # as a PDS ships them, so the ingester's MST proof runs for real.
        tree_now = Mst(tree)
        path_nodes = dict.fromkeys(c for op in op_list for c in tree_now.path(op["path"]))
        mst = [(c, tree_now.blocks[c]) for c in path_nodes]
        root = tree_now.root
        unsigned = {"did": did, "version": 3, "data": link(root), "rev": rev, "prev": None}
        signed = enc(unsigned)
        cb = enc({**unsigned, "sig": keys[did].sign_recoverable(signed)[:64]})  # sha256 + low-S compact
        ccid = cid_bytes(cb)
        hdr = enc({"version": 1, "roots": [link(ccid)]})
        car = bytearray(varint(len(hdr)) + hdr)
        for c, d in [(ccid, cb), *mst, *blocks]:
            car += varint(len(c) + len(d)) + c + d
        since, prev_root = heads.get(did, (None, None))
        if since is None:
            w.first.add(len(w.frames))
            w.first_ops += len(ops)
        body = {"seq": seq, "rebase": False, "tooBig": False, "repo": did, "commit": link(ccid), "rev": rev,
                "since": since, "blocks": bytes(car), "ops": op_list, "blobs": [], "time": stamp,
                "prevData": link(prev_root) if prev_root else None}
        heads[did] = (rev, root)
        w.frames.append(enc({"op": 1, "t": "#commit"}) + enc(body))
        w.ops += len(ops)
        w.commits_by_size[len(ops)] = w.commits_by_size.get(len(ops), 0) + 1
    return w
