"""Jetstream JSON decoding and the JSON → DAG-CBOR CID recomputation.

The CID checks run three ways: against the firehose's own CIDs (hypothesis: DAG-CBOR block → the
firehose decoder's JSON → recomputed CID), against 146 real network records (Jetstream's corpus), and
against tampering (any change to the record must change the CID).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import cbor2
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.events import IN_SCOPE_PREFIXES, AccountFrame, ErrorFrame, IdentityFrame, InfoFrame, Skipped
from ingester.decode.dagjson import DagJsonError, encode_record, record_cid
from ingester.decode.jetstream import JetstreamCommit, JetstreamError, JetstreamSync, decode_jetstream
from ingester.decode.records import cid_for_block, decode_record
from tests.jetstream_fake.wire import Upstream, v1_json, v2_json

CORPUS = Path(__file__).resolve().parents[1] / "jetstream_fake" / "corpus_expected_v1.jsonl"
DID = "did:plc:eygmaihciaxprqvxpfvl6flk"
REV = "3l3qo2vutsw2b"


# ---------------------------------------------------------------- atproto data model values


def _cid(codec: int, seed: bytes) -> cbor2.CBORTag:
    return cbor2.CBORTag(42, b"\x00" + bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(seed).digest())


keys = st.text(max_size=10).filter(lambda k: k not in ("$link", "$bytes"))
leaves = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=30) | st.binary(max_size=40)
    | st.builds(_cid, st.sampled_from([0x71, 0x55]), st.binary(max_size=8))
)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=25)
records = st.dictionaries(keys, values, max_size=6)


@given(records)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_cid_round_trips_against_the_firehose(record: dict[str, Any]) -> None:
    block = cbor2.dumps(record, canonical=True)  # DAG-CBOR: canonical key order, no floats generated
    json_model = orjson.loads(orjson.dumps(decode_record(block)))  # what the firehose path logs, via the wire
    assert encode_record(json_model) == block
    assert record_cid(json_model) == cid_for_block(block)


@given(records, st.text(min_size=1, max_size=10))
@settings(max_examples=100)
def test_any_change_to_the_record_changes_the_cid(record: dict[str, Any], extra: str) -> None:
    json_model = decode_record(cbor2.dumps(record, canonical=True))
    tampered = {**json_model, "$tampered": extra}
    assert record_cid(tampered) != record_cid(json_model)


def test_cids_of_real_network_records() -> None:
    checked = 0
    for line in CORPUS.read_text().splitlines():
        event = json.loads(line)
        frame = decode_jetstream(line, "v1")
        if event["kind"] == "commit" and "record" in event["commit"]:
            assert record_cid(event["commit"]["record"]) == event["commit"]["cid"]
            checked += 1
        in_scope = event["kind"] == "commit" and event["commit"]["collection"].startswith(IN_SCOPE_PREFIXES)
        # app.bsky.* and the like: out of scope, skipped with its cursor; fm.teal.* plays are ours
        assert isinstance(frame, JetstreamCommit) == in_scope
        assert getattr(frame, "seq", None) == event["time_us"]
    assert checked == 146


def test_links_bytes_and_blobs() -> None:
    blob_cid = "bafkreieajxclqzwk2mczx7hxmoboqpuiveqlbm35gsda5xlaqfmlryu4ri"
    record = {"$type": "fm.plyr.track", "audioBlob": {"$type": "blob", "ref": {"$link": blob_cid},
                                                      "mimeType": "audio/wav", "size": 3}, "sig": {"$bytes": "AAEC"}}
    block = encode_record(record)
    assert decode_record(block) == record
    # padded base64 is the same bytes, so the same CID
    assert record_cid({**record, "sig": {"$bytes": "AAE"}}) == record_cid({**record, "sig": {"$bytes": "AAE="}})
    # CID-shaped bytes stay bytes (libipld alone would turn them into a link)
    cid_bytes = bytes([0x01, 0x71, 0x12, 0x20]) + hashlib.sha256(b"x").digest()
    as_bytes = {"b": {"$bytes": base64.b64encode(cid_bytes).decode().rstrip("=")}}
    assert cbor2.loads(encode_record(as_bytes)) == {"b": cid_bytes}


@pytest.mark.parametrize("record, reason", [
    ({"a": {"$link": "not-a-cid"}}, "is not a CID"),
    ({"a": {"$link": 5}}, "$link must be a string"),
    ({"a": {"$bytes": "!!"}}, "not base64"),
    ({"a": 2**70}, "no DAG-CBOR encoding"),
    ({"a": "\ud800"}, "no DAG-CBOR encoding"),
    ([1], "record must be a map"),
])
def test_records_without_a_dag_cbor_form(record: Any, reason: str) -> None:
    with pytest.raises(DagJsonError, match=reason.replace("$", r"\$")):
        encode_record(record)


# ---------------------------------------------------------------- frames


def commit(operation: str = "create", **extra: Any) -> Upstream:
    c: dict[str, Any] = {"rev": REV, "operation": operation, "collection": "fm.plyr.like", "rkey": "3l3qo2vuowo2b"}
    if operation != "delete":
        record = {"$type": "fm.plyr.like", "createdAt": "2024-09-09T19:46:02.102Z",
                  "subject": {"cid": "bafyreiaaaa", "uri": "at://did:plc:x/fm.plyr.track/3l3pte3p2e325"}}
        c.update(record=record, cid=record_cid(record))
    c.update(extra)
    return Upstream("commit", DID, "fm.plyr.like", commit=c)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_commit_both_wires(version: str) -> None:
    up = commit()
    raw = v1_json(up, 1725911162329308, 7) if version == "v1" else v2_json(up, 1725911162329308, 7)
    assert raw is not None
    frame = decode_jetstream(raw, version)  # type: ignore[arg-type]
    assert isinstance(frame, JetstreamCommit)
    assert frame.seq == (1725911162329308 if version == "v1" else 7)
    assert (frame.did, frame.rev, frame.op.action, frame.op.rkey, frame.cid_error) == (
        DID, REV, "create", "3l3qo2vuowo2b", None)
    tampered = commit(record={**up.commit["record"], "createdAt": "2025-01-01T00:00:00Z"})  # type: ignore[index]
    raw = v1_json(tampered, 1, 1) if version == "v1" else v2_json(tampered, 1, 1)
    frame = decode_jetstream(raw or "", version)  # type: ignore[arg-type]
    assert isinstance(frame, JetstreamCommit) and frame.cid_error is not None
    assert frame.cid_error.startswith("cid mismatch: event says bafyrei")
    delete = decode_jetstream(v2_json(commit("delete"), 1, 2), "v2")
    assert isinstance(delete, JetstreamCommit) and delete.op.record is None and delete.op.cid is None


def test_identity_account_sync_info_error() -> None:
    ident = Upstream("identity", DID, None, wrapped={"did": DID, "handle": "a.test", "seq": 9, "time": "t"})
    acct = Upstream("account", DID, None, wrapped={"active": False, "did": DID, "seq": 10, "time": "t",
                                                   "status": "deleted"})
    sync = Upstream("sync", DID, None, wrapped={"did": DID, "rev": REV, "seq": 11, "time": "t",
                                                "blocks": {"$bytes": "AA"}})
    for version in ("v1", "v2"):
        enc = v1_json if version == "v1" else v2_json
        f = decode_jetstream(enc(ident, 5, 5) or "", version)  # type: ignore[arg-type]
        assert isinstance(f, IdentityFrame) and f.handle == "a.test" and f.seq == 5
        f = decode_jetstream(enc(acct, 6, 6) or "", version)  # type: ignore[arg-type]
        assert isinstance(f, AccountFrame) and (f.active, f.status) == (False, "deleted")
    assert v1_json(sync, 1, 1) is None  # v1 never carries #sync
    f = decode_jetstream(v2_json(sync, 7, 7), "v2")
    assert isinstance(f, JetstreamSync) and f.rev == REV
    info = ('{"$type":"message","payload":{"$type":"network.bsky.jetstream.subscribeEvents#info",'
            '"name":"OutdatedCursor"}}')
    assert decode_jetstream(info, "v2") == InfoFrame("OutdatedCursor", None)
    err = '{"$type":"error","error":"ConsumerTooSlow","message":"bye"}'
    assert decode_jetstream(err, "v2") == ErrorFrame("ConsumerTooSlow", "bye")
    future = '{"$type":"message","payload":{"$type":"network.bsky.jetstream.subscribeEvents#future","seq":3,' \
             '"did":"did:plc:x","time":"t"}}'
    assert decode_jetstream(future, "v2") == Skipped(3, "did:plc:x")


@pytest.mark.parametrize("raw, reason", [
    ("{not json", "not JSON"),
    ("[]", "JSON object"),
    ('{"$type":"message"}', "payload"),
    ('{"$type":"message","payload":{"$type":"app.other#commit"}}', "unknown payload"),
    ('{"$type":"message","payload":{"$type":"network.bsky.jetstream.subscribeEvents#commit","seq":true,'
     '"did":"d","time":"t"}}', "seq must be"),
    ('{"did":"d","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"nuke","collection":"fm.plyr.like",'
     '"rkey":"k"}}', "unknown operation"),
    ('{"did":"d","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"delete","collection":"fm.plyr.like",'
     '"rkey":"k","cid":"bafy"}}', "carries a record or cid"),
    ('{"did":"d","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"fm.plyr.like",'
     '"rkey":"k","cid":"bafy","record":[]}}', "record must be an object"),
    ('{"did":"d","time_us":1,"kind":"commit","commit":{"rev":"r","operation":"create","collection":"fm.plyr.like",'
     '"rkey":"a/b","cid":"bafy","record":{}}}', "not a record key"),
    ('{"did":"d\\u0000","time_us":1,"kind":"account","account":{"active":true}}', "U+0000"),
    ('{"did":"d","time_us":1,"kind":"account","account":{"active":true,"did":"e"}}', "!= envelope did"),
    ('{"did":"d","time_us":10000000000000000000,"kind":"account","account":{"active":true}}', "64-bit"),
])
def test_malformed_frames_say_why(raw: str, reason: str) -> None:
    version = "v2" if raw.startswith('{"$type"') or not raw.startswith('{"did"') else "v1"
    with pytest.raises(JetstreamError, match=re.escape(reason)):
        decode_jetstream(raw, version)  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30)
envelope_keys = st.sampled_from(["$type", "payload", "seq", "did", "time", "rev", "operation", "collection", "rkey",
                                 "cid", "record", "kind", "time_us", "commit", "identity", "account", "sync"])
envelopes = st.dictionaries(envelope_keys, json_values | st.just("fm.plyr.like") | st.just("message"), max_size=10)


@given(st.one_of(st.binary(max_size=200), st.text(max_size=200), envelopes.map(json.dumps),
                 st.dictionaries(envelope_keys, envelopes, max_size=3).map(json.dumps)),
       st.sampled_from(["v1", "v2"]))
@settings(max_examples=400)
def test_arbitrary_input_fails_only_with_jetstream_error(raw: Any, version: str) -> None:
    try:
        decode_jetstream(raw, version)  # type: ignore[arg-type]
    except JetstreamError:
        pass


@given(json_values)
@settings(max_examples=300)
def test_arbitrary_json_fails_only_with_dagjson_error(value: Any) -> None:
    try:
        encode_record(value)
    except DagJsonError:
        pass
