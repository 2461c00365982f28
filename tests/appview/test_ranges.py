"""Range header parsing: edge cases and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appview.playback.ranges import Partial, Unsatisfiable, Whole, if_range_allows, parse_range


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 10, Whole()),
    ("", 10, Whole()),
    ("bytes=0-0", 10, Partial(0, 0)),
    ("bytes=0-", 10, Partial(0, 9)),
    ("bytes=2-5", 10, Partial(2, 5)),
    ("bytes=2-500", 10, Partial(2, 9)),
    ("bytes=-3", 10, Partial(7, 9)),
    ("bytes=-30", 10, Partial(0, 9)),
    ("bytes=-0", 10, Unsatisfiable()),
    ("bytes=10-", 10, Unsatisfiable()),
    ("bytes=10-20", 10, Unsatisfiable()),
    ("bytes=0-", 0, Unsatisfiable()),
    ("bytes=-1", 0, Unsatisfiable()),
    ("BYTES = 1-2", 10, Partial(1, 2)),
    ("bytes= 1-2 ,", 10, Partial(1, 2)),
    ("bytes=5-2", 10, Whole()),  # invalid spec: ignore the header
    ("bytes=0-1,4-5", 10, Whole()),  # several ranges: we serve the whole body
    ("items=0-1", 10, Whole()),
    ("bytes=", 10, Whole()),
    ("bytes=-", 10, Whole()),
    ("bytes=a-b", 10, Whole()),
    ("bytes=1-2-3", 10, Whole()),
    ("bytes=+1-2", 10, Whole()),
    ("bytes=99999999999999999999-", 10, Whole()),  # absurd numbers are malformed, not a crash
    ("bytes=٣-٤", 10, Whole()),  # non-ASCII digits
    ("bytes", 10, Whole()),
])
def test_edge_cases(header: str | None, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


@given(st.text(max_size=40), st.integers(min_value=0, max_value=10**12))
def test_never_raises_and_stays_in_bounds(header: str, size: int) -> None:
    r = parse_range(header, size)
    if isinstance(r, Partial):
        assert 0 <= r.start <= r.end < size and r.length >= 1


@given(st.binary(min_size=1, max_size=200), st.data())
def test_ranges_select_the_same_bytes_as_slicing(body: bytes, data: st.DataObject) -> None:
    size = len(body)
    start = data.draw(st.integers(min_value=0, max_value=size - 1))
    end = data.draw(st.integers(min_value=start, max_value=size * 2))
    r = parse_range(f"bytes={start}-{end}", size)
    assert isinstance(r, Partial)
    assert body[r.start:r.end + 1] == body[start:end + 1]
    n = data.draw(st.integers(min_value=1, max_value=size * 2))
    s = parse_range(f"bytes=-{n}", size)
    assert isinstance(s, Partial) and body[s.start:s.end + 1] == body[-n:]


def test_if_range() -> None:
    assert if_range_allows(None, '"x"')
    assert if_range_allows('"x"', '"x"')
    assert not if_range_allows('"y"', '"x"')
    assert not if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", '"x"')
