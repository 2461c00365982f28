"""Hypothesis: label and teal.fm play validation never raise, accept what is valid, and a label's
signature covers every field."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import coincurve
import libipld
from hypothesis import given, settings
from hypothesis import strategies as st

from core.events import LoggedRecord
from core.lexicon import default_lexicons
from ingester.decode.labels import LabelFrameError, decode_label_frame
from ingester.projection.base import Put
from ingester.projection.plays import play_row, status_row
from ingester.validate.labels import check_label
from ingester.validate.records import RecordValidator
from ingester.verify.labels import LabelVerifier
from tests.ingester.framekit import StaticResolver
from tests.ingester.labelkit import Labeler, sign

LABELER = Labeler("did:plc:labelerlabelerlabelerlab")
VALIDATOR = RecordValidator(default_lexicons())
DIDS = st.sampled_from(["did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:web:example.com"])
URIS = st.one_of(DIDS, st.builds(lambda d, r: f"at://{d}/fm.plyr.track/{r}", DIDS,
                                 st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=1, max_size=13)))
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
VALS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40)
CBOR_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20),
                        st.binary(max_size=20))
ANY_CBOR = st.recursive(CBOR_LEAVES, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                       max_size=4), max_leaves=20)


@st.composite
def labels(draw: st.DrawFn) -> dict[str, Any]:
    kw: dict[str, Any] = {"cts": draw(TIMES)}
    if draw(st.booleans()):
        kw["exp"] = draw(TIMES)
    if draw(st.booleans()):
        kw["neg"] = True
    return LABELER.label(draw(URIS), draw(VALS), **kw)


def _verify(label: dict[str, Any]) -> tuple[bool, str | None]:
    verifier = LabelVerifier(StaticResolver({LABELER.did: LABELER.doc()}), expected_src=LABELER.did)
    verdict = asyncio.run(verifier.verify(label))
    return verdict.verified, verdict.rejected


@given(labels())
@settings(max_examples=150, deadline=None)
def test_valid_labels_pass_and_verify(label: dict[str, Any]) -> None:
    assert check_label(label) is None
    assert _verify(label) == (True, None)


@given(labels(), st.sampled_from(["uri", "val", "cts", "neg", "exp", "cid"]), st.data())
@settings(max_examples=150, deadline=None)
def test_changing_any_signed_field_breaks_the_signature(label: dict[str, Any], key: str, data: st.DataObject) -> None:
    replacement = {"uri": URIS, "val": VALS, "cts": TIMES, "exp": TIMES, "neg": st.booleans(),
                   "cid": st.just("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm")}[key]
    value = data.draw(replacement)
    if label.get(key) == value:
        return
    changed = {**label, key: value}
    if check_label(changed) is None:
        assert _verify(changed) == (False, "bad signature")


@given(ANY_CBOR)
@settings(max_examples=300, deadline=None)
def test_check_label_never_raises(value: Any) -> None:
    reason = check_label(value)
    assert reason is None or isinstance(reason, str)


@given(st.dictionaries(st.sampled_from(["ver", "src", "uri", "val", "cts", "exp", "neg", "cid", "sig"]),
                       ANY_CBOR, max_size=9))
@settings(max_examples=300, deadline=None)
def test_label_shaped_garbage_is_rejected_or_fully_valid(value: dict[str, Any]) -> None:
    reason = check_label(value)
    if reason is None:  # then it must have everything a verifier dereferences
        assert isinstance(value["src"], str) and isinstance(value["sig"], bytes)


@given(st.binary(max_size=200) | ANY_CBOR.map(lambda v: bytes(libipld.encode_dag_cbor({"op": 1, "t": "#labels"}))
                                              + bytes(libipld.encode_dag_cbor({"seq": 1, "labels": v}))))
@settings(max_examples=300, deadline=None)
def test_label_frames_only_raise_label_frame_error(raw: bytes) -> None:
    try:
        decode_label_frame(raw)
    except LabelFrameError:
        pass


NAMES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=60)


@st.composite
def plays(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    alpha = draw(st.booleans())
    collection = "fm.teal.alpha.feed.play" if alpha else "fm.teal.feed.play"
    r: dict[str, Any] = {"$type": collection, "trackName": draw(NAMES)}
    if draw(st.booleans()):
        r["artists"] = [{"artistName": n} for n in draw(st.lists(NAMES, min_size=1, max_size=3))]
    else:
        r["artistNames"] = draw(st.lists(NAMES, max_size=3))
    if draw(st.booleans()):
        r["playedTime"] = draw(TIMES)
    if draw(st.booleans()):
        r["duration"] = draw(st.integers(0, 10**6))
    # Either field generation, in either collection (records outlive lexicon renames).
    if draw(st.booleans()):
        r["originUri"] = draw(st.sampled_from([
            "https://plyr.fm/track/1", "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/fm.plyr.track/3kaaaaaaaaa22"]))
        r["musicServiceUri"] = "https://plyr.fm"
    else:
        r["originUrl"] = "https://plyr.fm/track/1"
        r["musicServiceBaseDomain"] = draw(st.sampled_from(["plyr.fm", "local", "spotify.com"]))
    return collection, r


def _put(collection: str, rkey: str, record: Any) -> Put:
    e = LoggedRecord(1, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", collection, rkey, "3k2222222222b", "create",
                     "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", record, True, None,
                     datetime.now(UTC))
    return Put(e, 1, datetime.now(UTC))


@given(plays())
@settings(max_examples=200, deadline=None)
def test_valid_plays_validate_and_project(play: tuple[str, dict[str, Any]]) -> None:
    collection, record = play
    assert VALIDATOR.check(collection, "3kppppppppp22", record) is None
    row = play_row(_put(collection, "3kppppppppp22", record))
    assert row[5] == record["trackName"] and row[9] is not None


@given(plays(), st.sampled_from(["trackName", "artists", "playedTime", "duration", "originUri", "$type"]), ANY_CBOR)
@settings(max_examples=300, deadline=None)
def test_play_validation_never_raises_and_what_passes_projects(
    play: tuple[str, dict[str, Any]], key: str, value: Any
) -> None:
    collection, record = play
    broken = {**record, key: value}
    reason = VALIDATOR.check(collection, "3kppppppppp22", broken)
    if reason is None:
        play_row(_put(collection, "3kppppppppp22", broken))


@given(st.sampled_from(["fm.teal.actor.status", "fm.teal.alpha.actor.status"]),
       st.dictionaries(st.sampled_from(["time", "expiry", "item", "$type"]), ANY_CBOR), TIMES, NAMES)
@settings(max_examples=200, deadline=None)
def test_status_validation_never_raises(collection: str, fields: dict[str, Any], time: str, name: str) -> None:
    record = {"$type": collection, "time": time, "item": {"trackName": name, "artists": []}, **fields}
    if VALIDATOR.check(collection, "self", record) is None:
        status_row(_put(collection, "self", record))


def test_sign_helper_is_low_s() -> None:
    key = coincurve.PrivateKey()
    half_order = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
    assert int.from_bytes(sign(key, b"x")[32:], "big") <= half_order
