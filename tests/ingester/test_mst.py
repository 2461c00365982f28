"""ingester.decode.mst: MST lookups and op proofs; the test MST builder in framekit; forged ops end to end.

`ops` of a #commit are unsigned: a relay could attach ops (and their record blocks) that the signed MST
does not contain. Each in-scope op is proven against the signed root; a failure is a `forged` commit.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import cbor2
import libipld
import psycopg
import pytest

from core.events import Commit
from ingester.decode.car import read_car
from ingester.decode.frames import decode_frame
from ingester.decode.mst import MissingBlock, MstError, key_layer, lookup, prove_ops
from tests.ingester import framekit
from tests.ingester.framekit import Mst, Net, car, cid_of, cid_str, enc, link, record_block, rev_of, track
from tests.ingester.test_decode import REAL_CREATE, REAL_SYNC
from tests.ingester.test_pipeline import Rig

TRACK = "fm.plyr.track"
R1, R2, R3 = "3kaaaaaaaaa22", "3kbbbbbbbbb22", "3kccccccccc22"


def t(rkey: str) -> str:
    return f"{TRACK}/{rkey}"


def raw(cid: str) -> bytes:
    d = libipld.decode_cid(cid)
    return bytes([d["version"], d["codec"], d["hash"]["code"], d["hash"]["size"]]) + d["hash"]["digest"]


# ---------------------------------------------------------------- interop vectors (atproto-interop-tests, CC0)

# mst/key_heights.json
KEY_HEIGHTS = [("", 0), ("asdf", 0), ("blue", 1), ("2653ae71", 0), ("88bfafc7", 2), ("2a92d355", 4),
               ("884976f5", 6), ("app.bsky.feed.post/454397e440ec", 4), ("app.bsky.feed.post/9adeb165882c", 8)]

LEAF = raw("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454")

# firehose/commit-proof-fixtures.json (every fixture's leafValue is LEAF)
COMMIT_PROOFS: list[dict[str, Any]] = json.loads("""[
{
 "comment": "two deep split",
 "keys": ["A0/374913", "B1/986427", "C0/451630", "E0/670489", "F1/085263", "G0/765327"],
 "adds": ["D2/269196"],
 "dels": [],
 "rootBeforeCommit": "bafyreicraprx2xwnico4tuqir3ozsxpz46qkcpox3obf5bagicqwurghpy",
 "rootAfterCommit": "bafyreihvay6pazw3dfa47u5d2tn3rd6pa57sr37bo5bqyvjuqc73ib65my",
 "blocksInProof": ["bafyreieazvzmba35p4phksumwfoklwe5o4ncmo7otud74idcyv4orrbzxi",
  "bafyreie4227qpa4vbtbpnsvuhp322b776vjuhxsidi5hxp2gawumr4m3de",
  "bafyreid44jgimksqqdratyste2moqu6zo4h6co2pknjppfoiplsqxtuxae",
  "bafyreiaerlvitye7fjjwodkshtbqqdsmfsdjtnlz4vs6y4trnddshsmd5a",
  "bafyreihvay6pazw3dfa47u5d2tn3rd6pa57sr37bo5bqyvjuqc73ib65my"]},
{
 "comment": "two deep leafless split",
 "keys": ["A0/374913", "B0/601692", "D0/952776", "E0/670489"],
 "adds": ["C2/014073"],
 "dels": [],
 "rootBeforeCommit": "bafyreialm5sgf7pijawbschsjpdevid5rss5ip3d4n4w6cc4mhu53sfl4i",
 "rootAfterCommit": "bafyreibxh4iztp5l2yshz3ectg2qjpeyprpw2gogao3pvceowpq3k3thya",
 "blocksInProof": ["bafyreih7dxytqtcjv3cfia3fi3wxofeip62teqkpynnkxisxqwfchfb4bu",
  "bafyreiaqbymlnvpklmogx75gozjl3y73gva43jbgwcrqu2pp5g5ejou5vm",
  "bafyreicfh3st5ghtnoqyyvznjv4lhfnvl7qsndempx35i4tcmoxakqbgrm",
  "bafyreieyjrrai6igjceyxzkajrxgxz37da2eufb33anvesb4ev6yzztauu",
  "bafyreibxh4iztp5l2yshz3ectg2qjpeyprpw2gogao3pvceowpq3k3thya"]},
{
 "comment": "add on edge with neighbor two layers down",
 "keys": ["A0/374913", "B2/827649", "C0/451630"],
 "adds": ["D2/269196"],
 "dels": [],
 "rootBeforeCommit": "bafyreigc6ay2qwfk7kuevvrczummpd64nknfo4yxpaooknfymzyb7u3ntq",
 "rootAfterCommit": "bafyreign6kxoll35r5f2ske6hjx7vg56aw3jn6r5hcopgrepzafpvohr2a",
 "blocksInProof": ["bafyreieazvzmba35p4phksumwfoklwe5o4ncmo7otud74idcyv4orrbzxi",
  "bafyreidicvcjgrpm5bmhm3ndh2ysqfhgzk4chwn3m4kuvwkenfusspb4uy",
  "bafyreign6kxoll35r5f2ske6hjx7vg56aw3jn6r5hcopgrepzafpvohr2a"]},
{
 "comment": "merge and split in multi-op commit",
 "keys": ["A0/374913", "B2/827649", "D2/269196", "E0/670489"],
 "adds": ["C2/014073"],
 "dels": ["B2/827649", "D2/269196"],
 "rootBeforeCommit": "bafyreiceld4icym4qjmdcn3dfgtxt7t66hdgyhvigessgmkvb56dx6amgi",
 "rootAfterCommit": "bafyreigkalika3taqauapfha556lo36zzcjoiifny5xeru6yis3nxw5ruq",
 "blocksInProof": ["bafyreid44jgimksqqdratyste2moqu6zo4h6co2pknjppfoiplsqxtuxae",
  "bafyreihytu6onh476trave25zuo63ziebkeong2755sc5nmf55uzdawgt4",
  "bafyreigkalika3taqauapfha556lo36zzcjoiifny5xeru6yis3nxw5ruq",
  "bafyreidnnkrdkcaswbflgtdsxm7nzs7p5f2rdous6wrlupzstuwqu5pfgm",
  "bafyreia2kq243hqq3volwlzkbzzphoeqauk54sc5h7vgogq4ei5fjizxvy"]},
{
 "comment": "complex multi-op commit",
 "keys": ["B0/601692", "C2/014073", "D0/952776", "E2/819540", "F0/697858", "H0/131238"],
 "adds": ["A2/827942", "G2/611528"],
 "dels": ["C2/014073"],
 "rootBeforeCommit": "bafyreigr3plnts7dax6yokvinbhcqpyicdfgg6npvvyx6okc5jo55slfqi",
 "rootAfterCommit": "bafyreiftrcrbhrwmi37u4egedlg56gk3jeh3tvmqvwgowoifuklfysyx54",
 "blocksInProof": ["bafyreih62n3gjbzzvlicuggpfydyzrp3ssyx7hdgtltd3sct3ribm3u73e",
  "bafyreihrjhuoynjvgteuefin5vwnqmupyfzvmytdobpstqt3mbawgw5qhm",
  "bafyreibevzst4gzkxo263syohlmq3lpxdvpjhlpyqx2ay3moh43lifydca",
  "bafyreifsdd7dv2neal7zjhyrsvndkaocelqlpgfxwo4utoq2g77klih37e",
  "bafyreid2wwyroodj2lxx2obikac74q77lsn6vqkoetlqqwwnr3criwlcvy",
  "bafyreie55b224oljhykpsxdjq4ajn2ysksud7qm347s6kn2ei6a775faum",
  "bafyreiftrcrbhrwmi37u4egedlg56gk3jeh3tvmqvwgowoifuklfysyx54"]},
{
 "comment": "split with earlier leaves on same layer",
 "keys": ["app.bsky.feed.post/3lo3kqqljmfe2", "app.bsky.feed.post/3log4547dm6h2",
  "app.bsky.feed.post/3log45inogon2", "app.bsky.feed.post/3logaodrh74d2", "app.bsky.feed.post/3logteazog2n2",
  "app.bsky.feed.post/3lon5cqsbwrj2", "app.bsky.feed.repost/3l6sjhvqonco2"],
 "adds": ["app.bsky.feed.post/3lon5dzeaihj2"],
 "dels": [],
 "rootBeforeCommit": "bafyreigfcsro2up7qi7l3rxdpg7n6gjtteotkmgrrqztl5oy2tf4ncl4ji",
 "rootAfterCommit": "bafyreig33hsjiplaixvmccy65n7rn3in5nsbtcittzx6k3w5wjfhk2sg3a",
 "blocksInProof": ["bafyreig33hsjiplaixvmccy65n7rn3in5nsbtcittzx6k3w5wjfhk2sg3a",
  "bafyreih2rhjm3apcghihwfojv2em7noqkgt5qyjcnxux7do674m464oc3m",
  "bafyreiajhswkduap4zvqvfhth3skdgckmk2eb5gow7vv3gvj45f4fqwmxm"]}
]""")


def test_key_layers_match_the_interop_vectors() -> None:
    for key, height in KEY_HEIGHTS:
        assert key_layer(key.encode()) == height == framekit.key_layer(key.encode()), key


def test_builder_reproduces_known_roots() -> None:
    """Root CIDs shared by the TS and Go implementations (indigo mst_interop_test.go)."""
    def root(*keys: str) -> str:
        return cid_str(Mst(dict.fromkeys(keys, LEAF)).root)

    p = "com.example.record/3jqfcqzm"
    assert root() == "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    assert root(f"{p}3fo2j") == "bafyreibj4lsc3aqnrvphp5xmrnfoorvru4wynt6lwidqbm2623a6tatzdu"
    assert root(f"{p}3fx2j") == "bafyreih7wfei65pxzhauoibu3ls7jgmkju4bspy4t2ha2qdjnzqvoy33ai"  # one layer-2 key
    assert root(*(f"{p}{s}" for s in ("3fp2j", "3fr2j", "3fs2j", "3ft2j", "4fc2j"))) == (
        "bafyreicmahysq4n6wfuxo522m6dpiy7z7qzym3dzs756t5n7nfdgccwq7m")
    trim = [f"{p}{s}" for s in ("3fn2j", "3fo2j", "3fp2j", "3fs2j", "3ft2j", "3fu2j")]  # 3fs2j is the layer-1 key
    assert root(*trim) == "bafyreifnqrwbk6ffmyaz5qtujqrzf5qmxf7cbxvgzktl4e3gabuxbtatv4"
    assert root(*(k for k in trim if k != f"{p}3fs2j")) == "bafyreie4kjuxbwkhzg2i5dljaswcroeih4dgiqq6pazcmunwt2byd725vi"


@pytest.mark.parametrize("fx", COMMIT_PROOFS, ids=[f["comment"] for f in COMMIT_PROOFS])
def test_commit_proof_fixtures(fx: dict[str, Any]) -> None:
    """The builder hits both roots, and the ops prove with nothing but the fixture's proof blocks."""
    before = dict.fromkeys(fx["keys"], LEAF)
    after = {k: v for k, v in {**before, **dict.fromkeys(fx["adds"], LEAF)}.items() if k not in fx["dels"]}
    assert cid_str(Mst(before).root) == fx["rootBeforeCommit"]
    tree = Mst(after)
    assert cid_str(tree.root) == fx["rootAfterCommit"]
    proof = {c: tree.blocks[c] for c in map(raw, fx["blocksInProof"])}
    ops = [("create", k, LEAF) for k in fx["adds"]] + [("delete", k, None) for k in fx["dels"]]
    assert prove_ops(tree.root, proof, ops) is None
    assert prove_ops(tree.root, tree.blocks, ops) is None
    for key in fx["adds"]:
        assert lookup(tree.root, key, proof) == LEAF
    for key in fx["dels"]:
        assert lookup(tree.root, key, proof) is None


# ---------------------------------------------------------------- lookups on a deep tree


def _deep_tree(n: int = 1500, seed: int = 7) -> tuple[Mst, dict[str, bytes], random.Random]:
    rng = random.Random(seed)
    entries = {t(framekit.tid(rng.getrandbits(50))): cid_of(rng.randbytes(8)) for _ in range(n)}
    return Mst(entries), entries, rng


def test_lookup_every_key_and_absent_keys_on_a_deep_tree() -> None:
    tree, entries, rng = _deep_tree()
    assert key_layer(next(iter(libipld.decode_dag_cbor(tree.blocks[tree.root])["e"]))["k"]) >= 4  # deep enough
    for key, value in entries.items():
        assert lookup(tree.root, key, tree.blocks) == value
        assert lookup(tree.root, key, {c: tree.blocks[c] for c in tree.path(key)}) == value  # path nodes suffice
    absent = [t(framekit.tid(rng.getrandbits(50))) for _ in range(300)] + ["a", "zzz", "fm.plyr.track/"]
    for key in absent:
        assert key not in entries
        assert lookup(tree.root, key, tree.blocks) is None
        assert lookup(tree.root, key, {c: tree.blocks[c] for c in tree.path(key)}) is None


def test_a_key_is_only_looked_for_at_its_own_layer() -> None:
    """Absence of a key of the root's layer or above is proven by the root alone (indigo getCID)."""
    tree, entries, _ = _deep_tree()
    root_layer = key_layer(libipld.decode_dag_cbor(tree.blocks[tree.root])["e"][0]["k"])
    only_root = {tree.root: tree.blocks[tree.root]}
    high = [k for i in range(20000) if key_layer((k := t(f"x{i}")).encode()) >= root_layer]
    assert any(key_layer(k.encode()) == root_layer for k in high) and any(
        key_layer(k.encode()) > root_layer for k in high)
    for key in high:
        assert lookup(tree.root, key, only_root) is None
    low = next(k for k in entries if key_layer(k.encode()) < root_layer)
    with pytest.raises(MissingBlock):
        lookup(tree.root, low, only_root)


def test_empty_tree_proves_absence_only() -> None:
    empty = Mst({})
    assert lookup(empty.root, t(R1), empty.blocks) is None
    assert prove_ops(empty.root, empty.blocks, [("delete", t(R1), None)]) is None
    assert prove_ops(empty.root, empty.blocks, [("create", t(R1), LEAF)]) == (
        f"create {t(R1)}: the key is not in the signed MST")


def test_prove_ops_reasons() -> None:
    tree, entries, _ = _deep_tree(200)
    (k1, v1), (k2, v2) = list(entries.items())[:2]
    assert prove_ops(tree.root, tree.blocks, [("create", k1, v1), ("update", k2, v2), ("delete", t(R1), None)]) is None
    other = cid_of(b"some other record")
    assert prove_ops(tree.root, tree.blocks, [("create", k1, v1), ("update", k2, other)]) == (
        f"update {k2}: the signed MST maps the key to {cid_str(v2)}, not to the op's {cid_str(other)}")
    assert prove_ops(tree.root, tree.blocks, [("delete", k1, None)]) == (
        f"delete {k1}: the key is still in the signed MST")
    assert prove_ops(tree.root, tree.blocks, [("create", t(R1), other)]) == (
        f"create {t(R1)}: the key is not in the signed MST")


def test_missing_node_is_missing_block_and_fails_the_proof() -> None:
    tree, entries, _ = _deep_tree(300)
    key, value = next(iter(entries.items()))
    path = tree.path(key)
    assert len(path) >= 3
    partial = {c: b for c, b in tree.blocks.items() if c != path[1]}
    with pytest.raises(MissingBlock) as err:
        lookup(tree.root, key, partial)
    assert isinstance(err.value, KeyError) and err.value.cid == path[1]
    reason = prove_ops(tree.root, partial, [("create", key, value)])
    assert reason == (f"create {key}: cannot prove against the signed MST: "
                      f"MST node {cid_str(path[1])} is missing from the CAR")
    with pytest.raises(MissingBlock):
        lookup(tree.root, key, {})  # even the root


def _node(left: bytes | None, *entries: tuple[int, bytes, bytes | None]) -> bytes:
    return enc({"l": None if left is None else link(left),
                "e": [{"p": p, "k": k, "v": link(LEAF), "t": None if r is None else link(r)} for p, k, r in entries]})


K0 = [k for i in range(2000) if key_layer(k := f"{TRACK}/k{i:04d}".encode()) == 0]  # sorted layer-0 keys
K1 = next(k for i in range(2000) if key_layer(k := f"{TRACK}/k{i:04d}".encode()) == 1)
EMPTY = _node(None)
AFTER_K1 = next(k for k in K0 if k > K1)
Case = tuple[bytes, list[bytes], bytes]  # (root block, other blocks, key to look up)

INVALID_NODES: dict[str, tuple[Case, str]] = {
    "unsorted": ((_node(None, (0, K0[1], None), (0, K0[0], None)), [], K0[0]), "out of order"),
    "duplicate": ((_node(None, (0, K0[0], None), (0, K0[0], None)), [], K0[0]), "out of order"),
    "empty key": ((_node(None, (0, b"", None)), [], K0[0]), "out of order"),
    "mixed layers": ((_node(None, *((0, k, None) for k in sorted([K0[0], K1]))), [], K0[0]), "in a node of layer"),
    "prefix too long": ((_node(None, (99, K0[0], None)), [], K0[0]), "malformed MST entry"),
    "key not bytes": ((enc({"l": None, "e": [{"p": 0, "k": "text", "v": link(LEAF), "t": None}]}), [], K0[0]),
                      "malformed MST entry"),
    "not a node": ((enc([1, 2]), [], K0[0]), "is not a {l, e} map"),
    "link below layer 0": ((_node(cid_of(EMPTY), (0, K0[0], None)), [EMPTY], K0[0]), "links to a lower layer"),
    "empty intermediate": ((_node(None, (0, K1, cid_of(EMPTY))), [EMPTY], AFTER_K1), "empty intermediate MST node"),
}


@pytest.mark.parametrize("case, reason", INVALID_NODES.values(), ids=INVALID_NODES.keys())
def test_invalid_nodes_fail_the_proof(case: Case, reason: str) -> None:
    root, others, key = case
    blocks = {cid_of(b): b for b in [root, *others]}
    with pytest.raises(MstError, match=re.escape(reason)):
        lookup(cid_of(root), key.decode(), blocks)
    assert reason in (prove_ops(cid_of(root), blocks, [("delete", key.decode(), None)]) or "")


def test_node_must_hash_to_its_cid() -> None:
    tree, entries, _ = _deep_tree(50)
    key = next(iter(entries))
    honest = Mst({**entries, key: cid_of(b"swapped")})  # a node block of another tree, under this tree's CID
    fake = {**tree.blocks, tree.root: honest.blocks[honest.root]}
    with pytest.raises(MstError, match="does not hash to its CID"):
        lookup(tree.root, key, fake)


# ---------------------------------------------------------------- decode_frame: framekit and real PDS frames


def test_framekit_commits_prove_through_decode_frame() -> None:
    """creates, updates, deletes and multi-op commits on a repo grown to a deep tree, each CAR partial."""
    rng = random.Random(3)
    repo = Net().repo()
    live: list[str] = []
    for n in range(120):
        ops: list[framekit.Op] = []
        for _ in range(rng.choice((1, 1, 2, 5))):
            roll = rng.random()
            if live and roll < 0.2:
                ops.append(("delete", live.pop(rng.randrange(len(live))), None))
            elif live and roll < 0.4:
                ops.append(("update", rng.choice([p for p in live if p not in {o[1] for o in ops}] or live),
                            track(f"edit {n}")))
            else:
                live.append(path := t(framekit.tid(rng.getrandbits(50))))
                ops.append(("create", path, track(f"song {n}")))
        if len({o[1] for o in ops}) < len(ops):
            continue  # one path twice in a commit: not something a PDS emits
        for _ in range(rng.choice((0, 0, 10))):  # bulk creates grow the tree
            live.append(path := t(framekit.tid(rng.getrandbits(50))))
            ops.append(("create", path, track()))
        ev = decode_frame(repo.commit(ops))
        assert isinstance(ev, Commit)
        assert ev.proof_error is None, ev.proof_error
        assert ev.data_cid == cid_str(repo.mst.root) and len(ev.ops) == len(ops)
    body = libipld.decode_dag_cbor_multi(repo.commit([("create", t(R1), track())]))[1]
    assert len(read_car(body["blocks"])[1]) < len(repo.mst.blocks) / 4  # the CAR is a diff, not the repo


def test_real_pds_frames_prove() -> None:
    """Captured from the reference PDS: the create proves, and our builder agrees with its MST roots."""
    ev = decode_frame(base64.b64decode(REAL_CREATE))
    sync = decode_frame(base64.b64decode(REAL_SYNC))
    assert isinstance(ev, Commit) and ev.proof_error is None and len(ev.ops) == 1
    assert ev.prev_data == sync.data_cid == cid_str(Mst({}).root)  # account creation: an empty repo
    (op,) = ev.ops
    assert ev.data_cid == cid_str(Mst({f"{op.collection}/{op.rkey}": raw(op.cid or "")}).root)


def test_only_in_scope_ops_are_proven() -> None:
    repo = Net().repo()
    bogus = cid_of(b"not an MST root")
    out_of_scope = decode_frame(repo.commit([("create", "app.bsky.feed.post/1", {"text": "hi"})], data=bogus),
                                frozenset({repo.did}))
    assert isinstance(out_of_scope, Commit) and out_of_scope.ops == () and out_of_scope.proof_error is None
    scoped = decode_frame(repo.commit([("create", t(R1), track())], data=bogus))
    assert isinstance(scoped, Commit)
    assert scoped.proof_error == (f"create {t(R1)}: cannot prove against the signed MST: "
                                  f"MST node {cid_str(bogus)} is missing from the CAR")


# ---------------------------------------------------------------- tampered frames through Ingest.handle


def tamper(frame: bytes, edit: Callable[[dict[str, Any], dict[bytes, bytes]], None]) -> bytes:
    """Re-encode a frame after `edit(body, car blocks)`; the signed commit block is left untouched."""
    decoder = cbor2.CBORDecoder(io.BytesIO(frame))
    header, body = decoder.decode(), decoder.decode()
    roots, blocks = read_car(body["blocks"])
    edit(body, blocks)
    body["blocks"] = car(roots, list(blocks.items()))
    return enc(header) + enc(body)


def inject(action: str, path: str, record: dict[str, Any] | None = None) -> Callable[..., None]:
    def edit(body: dict[str, Any], blocks: dict[bytes, bytes]) -> None:
        op: dict[str, Any] = {"action": action, "path": path, "cid": None}
        if record is not None:
            rb = record_block(record)
            blocks[cid_of(rb)] = rb
            op["cid"] = link(cid_of(rb))
        if action != "create":
            op["prev"] = link(cid_of(b"whatever"))
        body["ops"].append(op)
    return edit


def swap_record(record: dict[str, Any]) -> Callable[..., None]:
    def edit(body: dict[str, Any], blocks: dict[bytes, bytes]) -> None:
        rb = record_block(record)
        blocks[cid_of(rb)] = rb
        body["ops"][0]["cid"] = link(cid_of(rb))
    return edit


@pytest.fixture
async def rig(conn: psycopg.AsyncConnection) -> AsyncIterator[Rig]:
    r = Rig(conn)
    yield r
    await r.aclose()


@pytest.mark.parametrize("edit, reason", [
    (inject("create", t(R3), track("injected")), f"create {t(R3)}: the key is not in the signed MST"),
    (swap_record(track("swapped")), "the signed MST maps the key to"),
    (inject("delete", t(R1)), f"delete {t(R1)}: the key is still in the signed MST"),
])
async def test_ops_the_signed_mst_does_not_hold_are_forged(rig: Rig, edit: Callable[..., None], reason: str) -> None:
    alice = rig.repo()
    good1 = alice.commit([("create", t(R1), track("real"))])
    bad = tamper(alice.commit([("create", t(R2), track("two"))], advance=False), edit)
    good2 = alice.commit([("create", t(R2), track("also real"))])  # chains on good1: the bad one never counted
    assert isinstance(ev := decode_frame(bad), Commit) and reason in (ev.proof_error or "")

    await rig.handle(good1, bad, good2)

    assert await rig.records(alice.did) == [(TRACK, R1, "create", True, None), (TRACK, R2, "create", True, None)]
    [(kind, rev, payload)] = [e for e in await rig.repo_events(alice.did) if e[0] != "identity"]
    assert (kind, rev, payload) == ("forged", rev_of(bad), {"reason": ev.proof_error})
    assert rig.verifier.stats()["verified"] == 3 and rig.verifier.stats()["forged"] == 0  # the signature is fine
    assert await rig.state(alice.did) == (rev_of(good2), cid_str(alice.mst.root), "synchronized", None)
    await rig.project()
    assert await rig.rows("SELECT title FROM track ORDER BY title") == [("also real",), ("real",)]


async def test_commit_missing_an_mst_node_is_forged(rig: Rig) -> None:
    alice = rig.repo()
    rng = random.Random(5)
    alice.commit([("create", t(framekit.tid(rng.getrandbits(50))), track()) for _ in range(150)])
    frame = alice.commit([("create", t(R1), track("one"))])
    assert isinstance(ev := decode_frame(frame), Commit) and ev.proof_error is None
    path = alice.mst.path(t(R1))  # R1 is a layer-0 key: the lookup walks every node down to the bottom
    assert key_layer(t(R1).encode()) == 0 and len(path) >= 3
    bad = tamper(frame, lambda body, blocks: blocks.pop(path[1]))

    await rig.handle(bad)

    assert await rig.records(alice.did) == []
    [(kind, _, payload)] = await rig.repo_events(alice.did)
    assert kind == "forged" and payload["reason"] == (
        f"create {t(R1)}: cannot prove against the signed MST: MST node {cid_str(path[1])} is missing from the CAR")
    assert await rig.state(alice.did) is None
