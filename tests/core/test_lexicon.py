"""core.lexicon: fm.plyr.* records as plyr.fm writes them, invalid variants, interop vectors, properties."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.lexicon import (
    BSKY_COLLECTIONS,
    COMMENT,
    LEXICON_DIR,
    LIKE,
    LIST,
    PLYR_COLLECTIONS,
    PROFILE,
    TEAL_COLLECTIONS,
    TRACK,
    LexiconSet,
    check_data_model,
    default_lexicons,
)

VECTORS = Path(__file__).parent / "vectors"
LEX = default_lexicons()

DID = "did:plc:7iza6de2dwap2sbkpav7c6c6"
TID = "3lb2c4d5e6f7g"
TRACK_URI = f"at://{DID}/fm.plyr.track/3lb2c4d5e6f7a"
CID = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq"
BLOB_CID = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"
NOW = "2026-03-01T12:34:56.789Z"
REF = {"uri": TRACK_URI, "cid": CID}


def blob(mime: str = "audio/mpeg", size: int = 4044) -> dict[str, Any]:
    return {"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": mime, "size": size}


TRACK_MIN: dict[str, Any] = {
    "$type": TRACK, "title": "Night Drive", "artist": "Some Artist", "fileType": "mp3", "createdAt": NOW,
    "audioUrl": "https://pub-d4ed8efcca4d4ab2b1b9f6c9d1b5a6e1.r2.dev/audio/5f3a.mp3",
}  # fmt: skip
TRACK_FULL: dict[str, Any] = {
    **TRACK_MIN,
    "album": "Roads",
    "duration": 215,
    "features": [{"did": DID, "handle": "friend.bsky.social", "displayName": "Friend ✨"}],
    "imageUrl": "https://images.plyr.fm/images/8c1d.jpg",
    "supportGate": {"type": "any"},
    "description": "liner notes\nrecorded live",
    "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "graphic-media"}]},
    "audioBlob": blob(),
}
LIKE_REC = {"$type": LIKE, "subject": REF, "createdAt": NOW}
COMMENT_REC = {"$type": COMMENT, "subject": REF, "text": "drop 🔥", "timestampMs": 61500, "createdAt": NOW}
LIST_REC = {
    "$type": LIST, "name": "Roads", "listType": "album", "createdAt": NOW, "updatedAt": NOW,
    "items": [{"subject": REF}, {"subject": {"uri": f"at://{DID}/fm.plyr.track/3lb2c4d5e6f7b", "cid": CID}}],
}  # fmt: skip
PROFILE_REC = {
    "$type": PROFILE, "createdAt": NOW, "updatedAt": NOW, "bio": "beats & field recordings",
    "avatar": f"https://cdn.bsky.app/img/avatar/plain/{DID}/{CID}@jpeg",
}  # fmt: skip


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


def test_load_matches_repo_lexicons() -> None:
    assert LEX.collections == PLYR_COLLECTIONS | TEAL_COLLECTIONS | BSKY_COLLECTIONS
    assert LexiconSet.load(LEXICON_DIR).collections == PLYR_COLLECTIONS | TEAL_COLLECTIONS | BSKY_COLLECTIONS
    assert default_lexicons() is LEX
    assert LEX.record_key_type(TRACK) == "tid"
    assert LEX.record_key_type(PROFILE) == "literal:self"
    assert LEX.record_key_type("fm.plyr.nope") is None


VALID: list[tuple[str, str, dict[str, Any]]] = [
    (TRACK, TID, TRACK_MIN),
    (TRACK, TID, TRACK_FULL),
    (TRACK, TID, with_(without(TRACK_FULL, "audioUrl"), fileType="wav", audioBlob=blob("audio/vnd.wave"))),
    (TRACK, TID, with_(TRACK_MIN, features=[{"did": DID}], supportGate={"type": "copyright"})),
    (TRACK, TID, with_(TRACK_MIN, features=[{"did": DID, "handle": "a.test", "display_name": "legacy"}])),
    (TRACK, TID, with_(TRACK_MIN, title="é" * 128)),  # exactly 256 bytes
    (TRACK, TID, with_(TRACK_MIN, audioBlob={"cid": BLOB_CID, "mimeType": "audio/flac"})),  # legacy blob
    (TRACK, TID, with_(TRACK_MIN, labels={"$type": "com.example.other#labels", "x": 1})),  # open union
    (TRACK, TID, with_(TRACK_MIN, labels={"$type": "com.atproto.label.defs#selfLabels", "values": []})),
    (TRACK, TID, with_(TRACK_MIN, createdAt="2026-03-01T12:34:56+02:00")),
    (TRACK, TID, with_(TRACK_MIN, duration=0, album="")),
    (TRACK, TID, with_(TRACK_MIN, extra={"nested": [1, None, True, {"$link": CID}, {"$bytes": "aGk"}]})),
    (TRACK, TID, with_(TRACK_MIN, futureField=blob("image/png"), other={"$type": "x.y.z", "a": "b"})),
    (LIKE, TID, LIKE_REC),
    (COMMENT, TID, COMMENT_REC),
    (COMMENT, TID, with_(COMMENT_REC, updatedAt=NOW, timestampMs=0)),
    (LIST, TID, LIST_REC),
    (LIST, TID, {"$type": LIST, "name": "New", "listType": "playlist", "items": [], "createdAt": NOW}),
    (LIST, TID, with_(LIST_REC, listType="mixtape", name="e\u0301" * 64)),  # 64 graphemes, 128 code points
    (LIST, TID, with_(LIST_REC, items=[{"subject": REF}] * 500)),
    (PROFILE, "self", PROFILE_REC),
    (PROFILE, "self", {"$type": PROFILE, "createdAt": NOW}),
    (PROFILE, "self", with_(PROFILE_REC, bio="🏳️‍🌈" * 180)),  # 180 graphemes, 720 code points, 2520 bytes
]


@pytest.mark.parametrize(("collection", "rkey", "record"), VALID)
def test_valid_records(collection: str, rkey: str, record: dict[str, Any]) -> None:
    assert LEX.validate_record(collection, rkey, record) is None


INVALID: list[tuple[str, str, object, str]] = [
    ("fm.plyr.playlist", TID, TRACK_MIN, "unknown collection"),
    (TRACK, TID, [TRACK_MIN], "record must be an object, got array"),
    (TRACK, TID, without(TRACK_MIN, "$type"), "record has no $type"),
    (TRACK, TID, with_(TRACK_MIN, **{"$type": LIKE}),
     "$type 'fm.plyr.like' does not match collection 'fm.plyr.track'"),
    (TRACK, "x", TRACK_MIN, "rkey 'x' is not a valid tid"),
    (TRACK, "self", TRACK_MIN, "rkey 'self' is not a valid tid"),
    (PROFILE, TID, PROFILE_REC, "rkey '3lb2c4d5e6f7g' is not 'self' (literal:self)"),
    (TRACK, TID, without(TRACK_MIN, "title"), "title: missing required field"),
    (TRACK, TID, without(TRACK_MIN, "createdAt"), "createdAt: missing required field"),
    (TRACK, TID, with_(TRACK_MIN, title=42), "title: expected string, got integer"),
    (TRACK, TID, with_(TRACK_MIN, title=None), "title: expected string, got null"),
    (TRACK, TID, with_(TRACK_MIN, album=None), "album: expected string, got null"),
    (TRACK, TID, with_(TRACK_MIN, title="a" * 257), "title: string longer than maxLength 256 bytes"),
    (TRACK, TID, with_(TRACK_MIN, title="é" * 200), "title: string longer than maxLength 256 bytes"),
    (TRACK, TID, with_(TRACK_MIN, title=""), "title: string shorter than minLength 1 bytes"),
    (TRACK, TID, with_(TRACK_MIN, title="\ud800"), "title: string is not valid unicode"),
    (TRACK, TID, with_(TRACK_MIN, fileType="x" * 17), "fileType: string longer than maxLength 16 bytes"),
    (TRACK, TID, with_(TRACK_MIN, createdAt="2026-03-01 12:34:56Z"), "createdAt: invalid datetime"),
    (TRACK, TID, with_(TRACK_MIN, createdAt="2026-03-01T12:34:56"), "createdAt: invalid datetime"),
    (TRACK, TID, with_(TRACK_MIN, createdAt="2026-03-01t12:34:56Z"), "createdAt: invalid datetime"),
    (TRACK, TID, with_(TRACK_MIN, createdAt="2026-02-30T12:34:56Z"), "createdAt: invalid datetime"),
    (TRACK, TID, with_(TRACK_MIN, audioUrl="not a url"), "audioUrl: invalid uri 'not a url'"),
    (TRACK, TID, with_(TRACK_MIN, duration=3.5), "duration: expected integer, got float"),
    (TRACK, TID, with_(TRACK_MIN, duration=215.0), "duration: expected integer, got float"),
    (TRACK, TID, with_(TRACK_MIN, duration=True), "duration: expected integer, got boolean"),
    (TRACK, TID, with_(TRACK_MIN, duration=-1), "duration: integer -1 out of range"),
    (TRACK, TID, with_(TRACK_MIN, duration=2**63), "duration: integer 9223372036854775808 out of range"),
    (TRACK, TID, with_(TRACK_MIN, bpm=120.5), "bpm: float values are not allowed"),
    (TRACK, TID, with_(TRACK_MIN, x={"a": [1, 2.0]}), "x.a[1]: float values are not allowed"),
    (TRACK, TID, with_(TRACK_MIN, x=(1, 2)), "x: unsupported value type tuple"),
    (TRACK, TID, with_(TRACK_MIN, x=2**64), "x: integer out of 64-bit range"),
    (TRACK, TID, with_(TRACK_MIN, x={"$type": ""}), "x.$type: must be a non-empty string"),
    (TRACK, TID, with_(TRACK_MIN, x={"$link": "nope"}), "x: invalid $link object"),
    (TRACK, TID, with_(TRACK_MIN, features=[{"did": "alice"}]), "features[0].did: invalid did 'alice'"),
    (TRACK, TID, with_(TRACK_MIN, features=[{"did": DID, "handle": "bad_handle"}]), "features[0].handle"),
    (TRACK, TID, with_(TRACK_MIN, features=[{"handle": "a.test"}]), "features[0].did: missing required"),
    (TRACK, TID, with_(TRACK_MIN, features=[{"did": DID}] * 11), "features: array longer than maxLength 10"),
    (TRACK, TID, with_(TRACK_MIN, features={"did": DID}), "features: expected array, got object"),
    (TRACK, TID, with_(TRACK_MIN, supportGate={}), "supportGate.type: missing required field"),
    (TRACK, TID, with_(TRACK_MIN, supportGate="any"), "supportGate: expected object, got string"),
    (TRACK, TID, with_(TRACK_MIN, labels={"values": []}), "labels: union value has no $type"),
    (TRACK, TID, with_(TRACK_MIN, labels=["nudity"]), "labels: expected object (union), got array"),
    (TRACK, TID, with_(TRACK_MIN, labels={"$type": "com.atproto.label.defs#selfLabels",
                                          "values": [{"val": "x"}] * 11}), "labels.values: array longer"),
    (TRACK, TID, with_(TRACK_MIN, labels={"$type": "com.atproto.label.defs#selfLabels",
                                          "values": [{"val": "x" * 129}]}), "labels.values[0].val: str"),
    (TRACK, TID, with_(TRACK_MIN, audioBlob=blob("image/png")),
     "audioBlob: blob mimeType 'image/png' not accepted (audio/*)"),
    (TRACK, TID, with_(TRACK_MIN, audioBlob=blob(size=104857601)), "audioBlob: blob size 104857601 exceeds"),
    (TRACK, TID, with_(TRACK_MIN, audioBlob={**blob(), "size": 4044.0}), "audioBlob: invalid blob size"),
    (TRACK, TID, with_(TRACK_MIN, audioBlob=without(blob(), "ref")), "audioBlob: invalid blob"),
    (TRACK, TID, with_(TRACK_MIN, audioBlob=with_(blob(), ref=BLOB_CID)), "audioBlob: invalid blob"),
    (TRACK, TID, with_(TRACK_MIN, audioBlob=without(blob(), "mimeType")), "audioBlob: invalid blob mimeType"),
    (TRACK, TID, with_(TRACK_MIN, audioBlob={"cid": BLOB_CID, "mimeType": "video/mp4"}),
     "audioBlob: blob mimeType 'video/mp4' not accepted"),
    (TRACK, TID, with_(TRACK_MIN, audioBlob="https://x.test/a.mp3"), "audioBlob: expected blob, got string"),
    (LIKE, TID, with_(LIKE_REC, subject={"uri": "https://plyr.fm/t/1", "cid": CID}),
     "subject.uri: invalid at-uri 'https://plyr.fm/t/1'"),
    (LIKE, TID, with_(LIKE_REC, subject={"uri": TRACK_URI + "/x", "cid": CID}), "subject.uri: invalid at-u"),
    (LIKE, TID, with_(LIKE_REC, subject={"uri": TRACK_URI, "cid": "not-a-cid"}), "subject.cid: invalid cid"),
    (LIKE, TID, with_(LIKE_REC, subject={"uri": TRACK_URI}), "subject.cid: missing required field"),
    (LIKE, TID, with_(LIKE_REC, subject=TRACK_URI), "subject: expected object, got string"),
    (COMMENT, TID, with_(COMMENT_REC, text="x" * 1001), "text: string longer than maxLength 1000 bytes"),
    (COMMENT, TID, with_(COMMENT_REC, timestampMs=-5), "timestampMs: integer -5 out of range"),
    (COMMENT, TID, without(COMMENT_REC, "timestampMs"), "timestampMs: missing required field"),
    (COMMENT, TID, with_(COMMENT_REC, updatedAt="yesterday"), "updatedAt: invalid datetime 'yesterday'"),
    (LIST, TID, with_(LIST_REC, name="a" * 65), "name: string longer than maxGraphemes 64 graphemes"),
    (LIST, TID, with_(LIST_REC, name="e\u0301" * 65), "name: string longer than maxGraphemes 64 graphemes"),
    (LIST, TID, with_(LIST_REC, items=[{"subject": REF}] * 501), "items: array longer than maxLength 500"),
    (LIST, TID, with_(LIST_REC, items=[{}]), "items[0].subject: missing required field"),
    (LIST, TID, with_(LIST_REC, items=[{"subject": REF}] * 3 + [{"subject": {"uri": "at://x", "cid": CID}}]),
     "items[3].subject.uri: invalid at-uri 'at://x'"),
    (LIST, TID, without(LIST_REC, "items"), "items: missing required field"),
    (PROFILE, "self", with_(PROFILE_REC, bio="a" * 257), "bio: string longer than maxGraphemes 256"),
    (PROFILE, "self", with_(PROFILE_REC, bio="🏳️‍🌈" * 200), "bio: string longer than maxLength 2560 bytes"),
    (PROFILE, "self", with_(PROFILE_REC, avatar="cdn.bsky.app/x.jpg"), "avatar: invalid uri"),
]  # fmt: skip


@pytest.mark.parametrize(("collection", "rkey", "record", "reason"), INVALID)
def test_invalid_records(collection: str, rkey: str, record: object, reason: str) -> None:
    result = LEX.validate_record(collection, rkey, record)
    assert result is not None and result.startswith(reason), result


def test_deep_nesting_is_rejected_not_raised() -> None:
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    result = LEX.validate_record(TRACK, TID, with_(TRACK_MIN, deep=deep))
    assert result is not None and "nested deeper than" in result


def test_bad_lexicons_fail_at_load(tmp_path: Path) -> None:
    def doc(main: dict[str, Any], nsid: str = "com.example.thing") -> dict[str, Any]:
        return {"lexicon": 1, "id": nsid, "defs": {"main": main}}

    record = {"type": "object", "properties": {"x": {"type": "ref", "ref": "#missing"}}}
    with pytest.raises(ValueError, match="unresolvable"):
        LexiconSet([doc({"type": "record", "key": "tid", "record": record})])
    with pytest.raises(ValueError, match="record key type"):
        LexiconSet([doc({"type": "record", "key": "uuid", "record": {"type": "object"}})])
    with pytest.raises(ValueError, match="duplicate"):
        LexiconSet([doc({"type": "token"}), doc({"type": "token"})])
    (tmp_path / "com" / "example").mkdir(parents=True)
    good = doc({"type": "record", "key": "nsid", "record": {"type": "object"}})
    (tmp_path / "com" / "example" / "thing.json").write_text(json.dumps(good))
    (tmp_path / "notes.json").write_text("[1, 2]")  # not a lexicon: skipped
    lex = LexiconSet.load(tmp_path)
    assert lex.collections == {"com.example.thing"}
    assert lex.validate_record("com.example.thing", "fm.plyr.track", {"$type": "com.example.thing"}) is None
    assert lex.validate_record("com.example.thing", "x", {"$type": "com.example.thing"}) == (
        "rkey 'x' is not a valid nsid"
    )


# --- official interop vectors -----------------------------------------------------------------

CATALOG = LexiconSet([json.loads((VECTORS / "lexicon" / "record.json").read_text(encoding="utf-8"))])


def _record_cases(kind: str) -> list[object]:
    cases = json.loads((VECTORS / "lexicon" / f"record-data-{kind}.json").read_text(encoding="utf-8"))
    return [pytest.param(c["rkey"], c["data"], id=f"{i}-{c['name']}") for i, c in enumerate(cases)]


@pytest.mark.parametrize(("rkey", "data"), _record_cases("valid"))
def test_interop_record_valid(rkey: str, data: dict[str, Any]) -> None:
    assert CATALOG.validate_record("example.lexicon.record", rkey, data) is None


@pytest.mark.parametrize(("rkey", "data"), _record_cases("invalid"))
def test_interop_record_invalid(rkey: str, data: dict[str, Any]) -> None:
    assert CATALOG.validate_record("example.lexicon.record", rkey, data) is not None
    if "unknown" in data:  # upstream's "unknown wrong type" cases also lack the required field
        data = {**data, "integer": 1}
        assert CATALOG.validate_record("example.lexicon.record", rkey, data) is not None


def _data_model_cases(kind: str) -> list[object]:
    cases = json.loads((VECTORS / "data-model" / f"data-model-{kind}.json").read_text(encoding="utf-8"))
    return [pytest.param(c["note"], c["json"], id=f"{i}-{c['note']}") for i, c in enumerate(cases)]


@pytest.mark.parametrize(("note", "value"), _data_model_cases("valid"))
def test_interop_data_model_valid(note: str, value: Any) -> None:
    if note == "float, but integer-like":
        # 123.0 is an integer in DAG-JSON, but Python's JSON parsers hand us a float, and we reject
        # every float (CBOR-derived JSON from the firehose/Jetstream never writes integers as "123.0").
        assert check_data_model(value) == "rcrd.a: float values are not allowed"
    else:
        assert check_data_model(value) is None


@pytest.mark.parametrize(("note", "value"), _data_model_cases("invalid"))
def test_interop_data_model_invalid(note: str, value: Any) -> None:
    if note == "top-level not an object":
        assert LEX.validate_record(LIKE, TID, value) == "record must be an object, got string"
    else:
        assert check_data_model(value) is not None


# --- properties -----------------------------------------------------------------------------

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
collections_ = st.sampled_from(sorted(PLYR_COLLECTIONS) + ["fm.plyr.nope", ""])
track_keys = st.sampled_from(sorted(TRACK_FULL) + ["$type", "$link", "$bytes", "x"])


@given(collections_, st.text(max_size=15), json_values)
def test_random_values_never_raise(collection: str, rkey: str, value: object) -> None:
    result = LEX.validate_record(collection, rkey, value)
    assert result is None or isinstance(result, str)


@given(st.dictionaries(track_keys, json_values, max_size=6), st.sampled_from([TRACK_FULL, TRACK_MIN]))
def test_mutated_tracks_never_raise(changes: dict[str, Any], base: dict[str, Any]) -> None:
    for record in ({**base, **changes}, {**base, "features": [changes]}, {**base, "labels": changes}):
        result = LEX.validate_record(TRACK, TID, record)
        assert result is None or (isinstance(result, str) and result)


def _text(max_chars: int, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.text(min_size=min_size, max_size=max_chars)  # <= 4 UTF-8 bytes per char


b32 = "abcdefghijklmnopqrstuvwxyz234567"
tids = st.from_regex(r"[2-7a-j][2-7a-z]{12}", fullmatch=True)
dids = st.from_regex(r"did:(plc:[a-z2-7]{24}|web:[a-z0-9-]{1,20}\.[a-z]{2,6})", fullmatch=True)
handles = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\.(bsky\.social|[a-z]{2,10})", fullmatch=True)
urls = st.from_regex(r"https://[a-z0-9-]{1,20}\.[a-z]{2,6}/[A-Za-z0-9/._~-]{0,40}", fullmatch=True)
datetimes = st.builds(
    lambda dt, ms, tz: dt.isoformat(timespec="milliseconds" if ms else "seconds") + tz,
    st.datetimes(), st.booleans(), st.sampled_from(["Z", "+00:00", "+05:30"]),
)  # fmt: skip
blob_cids = st.text(alphabet=b32, min_size=52, max_size=52).map(lambda s: "bafkrei" + s)
plain_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                                                                inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
tracks = st.fixed_dictionaries(
    {
        "$type": st.just(TRACK),
        "title": _text(64, 1),
        "artist": _text(64, 1),
        "fileType": st.sampled_from(["mp3", "wav", "m4a", "aiff", "flac", "webm", "ogg"]),
        "createdAt": datetimes,
    },
    optional={
        "audioUrl": urls,
        "album": _text(64),
        "duration": st.integers(0, 2**53),
        "features": st.lists(
            st.fixed_dictionaries({"did": dids}, optional={"handle": handles, "displayName": _text(64)}),
            max_size=10,
        ),
        "imageUrl": urls,
        "supportGate": st.fixed_dictionaries({"type": _text(10)}),
        "description": _text(1250),
        "labels": st.fixed_dictionaries({
            "$type": st.just("com.atproto.label.defs#selfLabels"),
            "values": st.lists(st.fixed_dictionaries({"val": _text(32)}), max_size=10),
        }),
        "audioBlob": st.fixed_dictionaries({
            "$type": st.just("blob"),
            "ref": st.fixed_dictionaries({"$link": blob_cids}),
            "mimeType": st.sampled_from(["audio/mpeg", "audio/wav", "audio/mp4", "audio/flac", "audio/ogg"]),
            "size": st.integers(0, 104857600),
        }),
        "somethingNew": plain_json,
    },
)  # fmt: skip


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(tids, tracks)
def test_generated_valid_tracks_validate(rkey: str, record: dict[str, Any]) -> None:
    assert LEX.validate_record(TRACK, rkey, record) is None
