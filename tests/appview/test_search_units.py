"""Pure pieces of search: parameter parsing, tsquery/LIKE parameter building, the btree prefix bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appview.search.query import Query, _successor, fuzzy_threshold
from appview.search.text import BadSearchParam, parse_int, parse_q, parse_types, slugify


def test_parse_q_and_types_and_limit() -> None:
    assert parse_q("  late night ") == "late night"
    for bad in (None, "", "a", " a ", "x" * 101, "a\x00b"):
        with pytest.raises(BadSearchParam):
            parse_q(bad)
    assert parse_types(None) == ("tracks", "artists", "albums", "tags", "playlists")
    assert parse_types("playlists, TRACKS,,") == ("tracks", "playlists")
    assert parse_types("") == parse_types(None)
    with pytest.raises(BadSearchParam, match="'songs'"):
        parse_types("tracks,songs")
    assert parse_int("limit", None, 20, 1, 50) == 20
    for bad in ("0", "51", "x", "1.5", "9" * 5000):
        with pytest.raises(BadSearchParam):
            parse_int("limit", bad, 20, 1, 50)
    assert slugify("Shapes of Cafés!") == "shapes-of-cafes" and slugify("???") == "untitled"


def test_params_escape_like_and_quote_tsquery_words() -> None:
    p = Query(norm="100%_a\\b", indexable_websearch=True).params(20)
    assert p["sub"] == "%100\\%\\_a\\\\b%" and p["prefix"] == "100\\%\\_a\\\\b%"
    assert Query(norm="late n", indexable_websearch=True).params(5)["pq"] == "'late':* & 'n'"
    assert Query(norm="&|!():*", indexable_websearch=False).params(5)["pq"] is None


def test_fuzzy_only_for_short_queries() -> None:
    def q(norm: str) -> Query:
        return Query(norm=norm, indexable_websearch=True)

    assert q("lendermann").fuzzy and q("late night drive").fuzzy and q("smels like teen spirit").fuzzy
    assert not q("ab").fuzzy and not q("one two three four five six seven").fuzzy and not q("x" * 50).fuzzy
    assert fuzzy_threshold(0) == fuzzy_threshold(1) == 0.4 and fuzzy_threshold(3) == 0.5
    assert fuzzy_threshold(4) == fuzzy_threshold(9) == 0.6


@given(st.text(min_size=1, max_size=8) | st.sampled_from(["a\U0010ffff", "\ud7ff", "z\U0010ffff\U0010ffff"]),
       st.text(max_size=4))
def test_successor_bounds_exactly_the_strings_with_that_prefix(prefix: str, tail: str) -> None:
    upper = _successor(prefix)
    if upper is None:
        assert set(prefix) == {"\U0010ffff"}
        return
    assert prefix.encode("utf-8", "surrogatepass") <= (prefix + tail).encode("utf-8", "surrogatepass")
    assert (prefix + tail).encode("utf-8", "surrogatepass") < upper.encode("utf-8", "surrogatepass")
