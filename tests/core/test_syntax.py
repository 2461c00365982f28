"""core.syntax against the official atproto interop vectors (tests/core/vectors/syntax) + edge cases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import syntax
from core.syntax import AtUri, parse_at_uri

VECTORS = Path(__file__).parent / "vectors" / "syntax"

CHECKS: dict[str, Callable[[str], bool]] = {
    "atidentifier": syntax.is_at_identifier,
    "aturi": syntax.is_at_uri,
    "cid": syntax.is_cid,
    "datetime": syntax.is_datetime,
    "did": syntax.is_did,
    "handle": syntax.is_handle,
    "language": syntax.is_language,
    "nsid": syntax.is_nsid,
    "recordkey": syntax.is_record_key,
    "tid": syntax.is_tid,
    "uri": syntax.is_uri,
}


def _cases() -> list[object]:
    """One param per vector line; '*_valid.txt' must pass, '*_invalid.txt' (syntax or parse) must fail."""
    cases: list[object] = []
    for path in sorted(VECTORS.glob("*.txt")):
        name, _, rest = path.stem.partition("_")
        expected = rest == "syntax_valid"
        # Only "\n" is a separator: leading/trailing spaces are part of the vectors.
        for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if line and not line.startswith("#"):
                cases.append(pytest.param(name, line, expected, id=f"{path.stem}:{lineno}"))
    return cases


CASES = _cases()


def test_all_vector_files_are_used() -> None:
    files = {p.stem.partition("_")[0] for p in VECTORS.glob("*.txt")}
    assert files == set(CHECKS)
    assert len(CASES) > 500


@pytest.mark.parametrize(("kind", "value", "expected"), CASES)
def test_interop_vector(kind: str, value: str, expected: bool) -> None:
    assert CHECKS[kind](value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-02-29T00:00:00Z", True),  # leap year
        ("2023-02-29T00:00:00Z", False),
        ("1900-02-29T00:00:00Z", False),  # century, not leap
        ("2000-02-29T00:00:00Z", True),
        ("2024-04-31T00:00:00Z", False),
        ("2024-01-01T00:00:60Z", False),  # leap second: not representable downstream
        ("2024-01-01T00:00:00+24:00", False),
        ("2024-01-01T00:00:00-00:00", False),
        ("2024-01-01T00:00:00+00:00", True),
        ("2024-01-01T00:00:00Z\n", False),  # fullmatch, not `$`
        ("2024-01-01T00:00:00.Z", False),
        ("2024-01-01T00:00:00,5Z", False),
        ("２０２４-01-01T00:00:00Z", False),  # non-ASCII digits
        ("9999-12-31T23:59:59Z", True),
        ("9999-12-31T23:00:00-01:00", False),  # normalises to year 10000
        ("0000-01-01T01:00:00+01:00", True),  # normalises to exactly 0000-01-01T00:00Z
    ],
)
def test_datetime_edges(value: str, expected: bool) -> None:
    assert syntax.is_datetime(value) is expected


@pytest.mark.parametrize(
    ("fn", "value", "expected"),
    [
        (syntax.is_did, "did:plc:7iza6de2dwap2sbkpav7c6c6\n", False),
        (syntax.is_handle, "xn--ls8h.test\n", False),
        (syntax.is_nsid, "fm.plyr.track", True),
        (syntax.is_nsid, "fm.plyr.actor.profile", True),
        (syntax.is_nsid, "fm.plyr", False),
        (syntax.is_tid, "3lb2c4d5e6f7g", True),
        (syntax.is_record_key, "self", True),
        (syntax.is_uri, "https://images.plyr.fm/images/abc.jpg", True),
        (syntax.is_uri, "https:///no-host", False),
        (syntax.is_uri, "https://exa\x00mple.com", False),
        (syntax.is_uri, "https://example.com/\u00a0x", False),  # unicode whitespace
        (syntax.is_cid, "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity", True),
        (syntax.is_cid, "bafkreiCCLDH766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity", False),
        (syntax.is_cid, "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR", False),
        (syntax.is_language, "en", True),
        (syntax.is_language, "x-private", True),
    ],
)
def test_misc_edges(fn: Callable[[str], bool], value: str, expected: bool) -> None:
    assert fn(value) is expected


@pytest.mark.parametrize("fn", list(CHECKS.values()))
@pytest.mark.parametrize("value", [None, 1, b"did:plc:abc", ["at://a.b"], 1.5])
def test_non_strings_are_invalid(fn: Callable[[object], bool], value: object) -> None:
    assert fn(value) is False


def test_parse_at_uri_parts() -> None:
    uri = "at://did:plc:7iza6de2dwap2sbkpav7c6c6/fm.plyr.track/3lb2c4d5e6f7g"
    parsed = parse_at_uri(uri)
    assert parsed == AtUri("did:plc:7iza6de2dwap2sbkpav7c6c6", "fm.plyr.track", "3lb2c4d5e6f7g")
    assert str(parsed) == uri
    assert parse_at_uri("at://alice.test") == AtUri("alice.test", None, None)
    assert parse_at_uri("at://alice.test/fm.plyr.like") == AtUri("alice.test", "fm.plyr.like", None)
    with pytest.raises(AttributeError):
        parsed.rkey = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("https://x.test", "must start with 'at://'"),
        ("at://did:plc:abc/fm.plyr.track/3lb2c4d5e6f7g#/x", "fragment"),
        ("at://did:plc:abc/fm.plyr.track/3lb2c4d5e6f7g?x=1", "query"),
        ("at://did:plc:abc/fm.plyr.track/rk/extra", "more than two path segments"),
        ("at://did:plc:abc/", "collection is not a valid NSID"),
        ("at://nope/fm.plyr.track", "neither a DID nor a handle"),
        ("at://did:plc:abc/fm_plyr.track", "collection is not a valid NSID"),
        ("at://did:plc:abc/fm.plyr.track/..", "record key is not valid"),
        ("at://did:plc:abc/fm.plyr.track/" + "o" * 8200, "longer than 8192"),
        (None, "must be a string"),
    ],
)
def test_parse_at_uri_errors(uri: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_at_uri(uri)


@given(st.text(max_size=80))
def test_validators_never_raise(value: str) -> None:
    for fn in CHECKS.values():
        assert fn(value) in (True, False)
    try:
        parse_at_uri(value)
    except ValueError:
        pass


@given(st.from_regex(r"did:[a-z]{1,8}:[a-zA-Z0-9._:%-]{0,40}[a-zA-Z0-9._-]", fullmatch=True))
def test_generated_dids_valid(value: str) -> None:
    assert syntax.is_did(value)
    assert syntax.is_at_identifier(value)


@given(
    st.datetimes(timezones=st.none()),
    st.sampled_from(["", ".1", ".123", ".123456"]),
    st.sampled_from(["Z", "+00:00", "+05:30"]),
)
def test_generated_datetimes_valid(dt: datetime, frac: str, tz: str) -> None:
    value = dt.isoformat(timespec="seconds") + frac + tz
    assert syntax.is_datetime(value), value
