"""getRepo CARs → signed commit + in-scope records (ingester/decode/repo.py), and the replay of held commits."""

from __future__ import annotations

from typing import Any

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import PublicKey, verify_signature
from core.events import Commit, RecordOp, SyncFrame
from ingester.backfill.replay import replay
from ingester.decode.mst import MstError
from ingester.decode.repo import RepoError, load_repo, walk_mst
from ingester.pipeline.gate import Held, ResyncGate
from ingester.validate.records import RecordValidator
from ingester.verify.chain import ChainState
from tests.ingester.framekit import Mst, Net, Repo, car, cid_of, cid_str, record_block, track

VALIDATOR = RecordValidator()


def snapshot(repo: Repo, records: dict[str, dict[str, Any]], *, drop: set[bytes] | frozenset[bytes] = frozenset(),
             key: coincurve.PrivateKey | None = None) -> tuple[bytes, Mst]:
    blocks = {p: record_block(r) for p, r in records.items()}
    mst = Mst({p: cid_of(b) for p, b in blocks.items()})
    ccid, cblock = repo._commit_block(repo.net.next_tid(), mst.root, key)
    parts = [(ccid, cblock), *mst.blocks.items(), *((cid_of(b), b) for b in blocks.values())]
    return car([ccid], [p for p in parts if p[0] not in drop]), mst


def mixed(n: int) -> dict[str, dict[str, Any]]:
    """In-scope records among plenty of others on both sides of the fm.plyr key range."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(n):
        out[f"fm.plyr.track/3k{i:011d}"] = track(f"t{i}")
        out[f"app.bsky.feed.post/3k{i:011d}"] = {"$type": "app.bsky.feed.post", "text": f"post {i}"}
        out[f"zz.other.thing/3k{i:011d}"] = {"$type": "zz.other.thing", "n": i}
    out["fm.plyr.actor.profile/self"] = {"$type": "fm.plyr.actor.profile", "createdAt": "2026-01-01T00:00:00Z"}
    out["app.bsky.actor.profile/self"] = {"$type": "app.bsky.actor.profile", "displayName": "Alice"}
    out["app.bsky.actor.profile/other"] = {"$type": "app.bsky.actor.profile", "displayName": "not self"}
    return out


def kept(path: str) -> bool:
    return path.startswith("fm.plyr.") or path == "app.bsky.actor.profile/self"


def test_keeps_in_scope_records_and_exposes_the_signed_commit() -> None:
    repo = Net().repo()
    records = mixed(150)
    data, mst = snapshot(repo, records)
    snap = load_repo(data, repo.did)
    in_scope = {p: r for p, r in records.items() if kept(p)}
    assert set(snap.records) == set(in_scope)
    assert all(snap.records[p].record == r and snap.records[p].cid == cid_str(cid_of(record_block(r)))
               for p, r in in_scope.items())
    assert snap.data_cid == cid_str(mst.root)
    assert verify_signature(PublicKey("k256", repo.key.public_key.format()), snap.signed_bytes, snap.sig)


def test_out_of_scope_subtrees_are_never_read() -> None:
    """Nodes holding only other collections may be missing from the CAR: the walk prunes them."""
    repo = Net().repo()
    records = mixed(200)
    _, mst = snapshot(repo, records)
    lo, hi = b"fm.plyr.", b"fm.plyr/"
    needed: set[bytes] = set()
    # the nodes a pruned walk needs are those whose key interval meets [lo, hi): find them by walking with a
    # recording block map
    class Recorder(dict):  # type: ignore[type-arg]
        def get(self, k: bytes, default: Any = None) -> Any:
            needed.add(k)
            return super().get(k, default)

    walk_mst(mst.root, Recorder(mst.blocks), lo, hi)
    profile = b"app.bsky.actor.profile/self"
    walk_mst(mst.root, Recorder(mst.blocks), profile, profile + b"\x00")
    assert len(needed) < len(mst.blocks)  # something was pruned
    data, _ = snapshot(repo, records, drop=set(mst.blocks) - needed)
    assert len(load_repo(data, repo.did).records) == 202


@settings(max_examples=60, deadline=None)
@given(st.sets(st.text(alphabet="abcfmpz.", min_size=1, max_size=12), max_size=60),
       st.text(alphabet="abcfmpz.", max_size=6), st.text(alphabet="abcfmpz.", max_size=6))
def test_a_pruned_walk_is_the_full_walk_filtered(names: set[str], lo: str, hi: str) -> None:
    entries = {f"{n}/k": cid_of(n.encode()) for n in names}
    mst = Mst(entries)
    everything = walk_mst(mst.root, mst.blocks, b"", b"\xff")
    assert [k for k, _ in everything] == sorted(k.encode() for k in entries)
    assert walk_mst(mst.root, mst.blocks, lo.encode(), hi.encode()) == [
        (k, v) for k, v in everything if lo.encode() <= k < hi.encode()]


def test_malformed_repos_are_repo_errors() -> None:
    repo = Net().repo()
    records = mixed(20)
    data, mst = snapshot(repo, records)
    with pytest.raises(RepoError, match="not for|is for"):
        load_repo(data, "did:plc:" + "a" * 24)
    record_cid = cid_of(record_block(records["fm.plyr.track/3k00000000003"]))
    with pytest.raises(RepoError, match="missing"):
        load_repo(snapshot(repo, records, drop={record_cid})[0], repo.did)
    with pytest.raises(RepoError, match="invalid MST"):
        load_repo(snapshot(repo, records, drop={mst.root})[0], repo.did)
    with pytest.raises(RepoError, match="not a CAR"):
        load_repo(b"<html>429 Too Many Requests</html>", repo.did)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_garbage_and_truncations_only_ever_raise_repo_error(data: st.DataObject) -> None:
    repo = Net().repo()
    raw, _ = snapshot(repo, mixed(5))
    cut = data.draw(st.integers(0, len(raw)))
    flip = data.draw(st.integers(0, len(raw) - 1))
    for candidate in (raw[:cut], raw[:flip] + bytes([raw[flip] ^ 0x41]) + raw[flip + 1:],
                      data.draw(st.binary(max_size=200))):
        try:
            load_repo(candidate, repo.did)
        except RepoError:
            pass


def test_walk_rejects_a_node_that_does_not_hash_to_its_cid() -> None:
    mst = Mst({"fm.plyr.track/a": cid_of(b"x")})
    with pytest.raises(MstError):
        walk_mst(mst.root, {mst.root: mst.blocks[mst.root] + b"\x00"}, b"", b"\xff")


# ---------------------------------------------------------------- replay of held commits


def commit(rev: str, since: str | None, data: str, *ops: RecordOp, prev_data: str | None = None) -> Commit:
    return Commit(seq=0, did="did:plc:x", rev=rev, since=since, commit_cid="c", prev_data=prev_data, data_cid=data,
                  ops=ops, signed_bytes=b"", sig=b"", time="2026-11-24T00:00:00Z")


def op(rkey: str, action: str = "create") -> RecordOp:
    rec = None if action == "delete" else track(rkey)
    return RecordOp(action, "fm.plyr.track", rkey, None if action == "delete" else "bafy" + rkey, None, rec)  # type: ignore[arg-type]


def held(*frames: Commit | SyncFrame) -> list[Held]:
    return [Held("firehose:x", f) for f in frames]


BASE = ChainState("3k0000000005a", "d5", "synchronized")


def test_commits_stacking_on_the_snapshot_are_replayed() -> None:
    events, state = replay(BASE, held(
        commit("3k0000000004a", "3k0000000003a", "d4", op("old")),  # already in the snapshot
        commit("3k0000000006a", "3k0000000005a", "d6", op("a"), prev_data="d5"),
        commit("3k0000000007a", "3k0000000006a", "d7", op("a", "delete"), prev_data="d6"),
    ), False, VALIDATOR)
    assert [(e.rkey, e.action, e.rev, e.source) for e in events] == [
        ("a", "create", "3k0000000006a", "firehose:x"), ("a", "delete", "3k0000000007a", "firehose:x")]
    assert state == ChainState("3k0000000007a", "d7", "synchronized")


def test_a_gap_keeps_the_events_but_leaves_the_repo_desynchronized() -> None:
    events, state = replay(BASE, held(
        commit("3k0000000007a", "3k0000000006a", "d7", op("b")),  # 6 never arrived
        commit("3k0000000008a", "3k0000000007a", "d8", op("c")),
    ), False, VALIDATOR)
    assert [e.rkey for e in events] == ["b", "c"]
    assert state.sync_status == "desynchronized" and state.rev == "3k0000000008a"
    assert "gap after resync" in (state.reason or "")


def test_sync_frames_and_overflow() -> None:
    same = SyncFrame(0, "did:plc:x", "3k0000000006a", "c", "d5", b"", b"", "t")
    reset = SyncFrame(0, "did:plc:x", "3k0000000007a", "c", "dX", b"", b"", "t")
    assert replay(BASE, held(same), False, VALIDATOR)[1].sync_status == "synchronized"
    assert replay(BASE, held(reset), False, VALIDATOR)[1].sync_status == "desynchronized"
    assert replay(BASE, held(), True, VALIDATOR)[1].reason == "live buffer overflowed during resync"


def test_gate_holds_only_repos_being_resynced() -> None:
    gate = ResyncGate()
    enrolled: list[tuple[str, str]] = []
    gate.on_enroll(lambda d, r: enrolled.append((d, r)))
    c = commit("3k0000000006a", None, "d")
    assert not gate.hold("did:plc:x", "s", c)
    gate.begin("did:plc:x")
    assert gate.hold("did:plc:x", "s", c) and gate.resyncing("did:plc:x")
    assert gate.end("did:plc:x") == ([Held("s", c)], False)
    assert not gate.resyncing("did:plc:x")
    gate.enroll("did:plc:y", "why")
    assert enrolled == [("did:plc:y", "why")]

