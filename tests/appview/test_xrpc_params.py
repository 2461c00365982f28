"""Query lexicons: parameters parsed like the reference server, outputs validated against the schema."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.lexicon import LexiconSet
from core.lexicon_methods import ParamError, load_queries, parse_params, validate_output
from tests.appview.xrpckit import ART, QUERIES, URI, track_view

TRACKS, TRACK = QUERIES["fm.plyr.test.getTracks"], QUERIES["fm.plyr.test.getTrack"]


def parse(*pairs: tuple[str, str]) -> dict[str, Any]:
    return parse_params(TRACKS, pairs)


def refused(*pairs: tuple[str, str], method: Any = TRACKS) -> str:
    with pytest.raises(ParamError) as info:
        parse_params(method, pairs)
    return str(info.value)


def test_queries_are_found() -> None:
    assert {"fm.plyr.test.getTracks", "fm.plyr.test.getTrack", "fm.plyr.test.getViewer",
            "fm.plyr.test.getNothing"} <= QUERIES.keys()
    assert TRACKS.errors == ("ActorNotFound",) and TRACKS.output_encoding == "application/json"
    assert QUERIES["fm.plyr.test.getNothing"].output is None


def test_defaults_types_and_arrays() -> None:
    assert parse() == {"limit": 50, "sort": "new", "hidden": False}
    got = parse(("limit", "10"), ("hidden", "true"), ("uris", URI), ("uris", URI), ("years", "1999"),
                ("sort", "anything"), ("artist", "artist.test"), ("since", "2026-11-01T10:00:00Z"))
    assert got == {"limit": 10, "hidden": True, "uris": [URI, URI], "years": [1999], "sort": "anything",
                   "artist": "artist.test", "since": "2026-11-01T10:00:00Z"}


def test_unknown_and_empty_parameters_are_ignored() -> None:
    assert parse(("nope", "1"), ("limit", ""), ("__proto__", "x")) == {"limit": 50, "sort": "new", "hidden": False}


@pytest.mark.parametrize("pairs,needle", [
    ((("limit", "0"),), "limit: integer 0 out of range [1, 100]"),
    ((("limit", "101"),), "limit: integer 101 out of range"),
    ((("limit", "ten"),), "limit: expected an integer"),
    ((("limit", "1.5"),), "limit: expected an integer"),
    ((("limit", "99999999999999999999999"),), "limit: expected an integer"),
    ((("limit", "1"), ("limit", "2")), "limit: expected a single value"),
    ((("hidden", "yes"),), "hidden: expected true or false"),
    ((("hidden", "True"),), "hidden: expected true or false"),
    ((("kind", "ep"),), "kind: 'ep' is not one of the enum values"),
    ((("cursor", "x" * 65),), "cursor: string longer than maxLength 64"),
    ((("cursor", "a\x00b"),), "cursor: must not contain NUL"),
    ((("artist", "not an identifier"),), "artist: invalid at-identifier"),
    ((("uris", "https://x.test/a"),), "uris[0]: invalid at-uri"),
    ((("uris", URI),) * 4, "uris: array longer than maxLength 3"),
    ((("years", "1800"),), "years[0]: integer 1800 out of range"),
    ((("since", "yesterday"),), "since: invalid datetime"),
    ((("collection", "fm"),), "collection: invalid nsid"),
    ((("cid", "bafy"),), "cid: invalid cid"),
    ((("did", ART.upper()),), "did: invalid did"),
    ((("handle", "-x.test"),), "handle: invalid handle"),
    ((("link", "not a uri"),), "link: invalid uri"),
])  # fmt: skip
def test_bad_parameters_are_named(pairs: tuple[tuple[str, str], ...], needle: str) -> None:
    assert needle in refused(*pairs)


def test_required() -> None:
    assert refused(method=TRACK) == "uri: missing required parameter"
    assert parse_params(TRACK, [("uri", URI)]) == {"uri": URI}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(TRACKS.params)) | st.text(max_size=8),
                          st.text(max_size=40) | st.integers().map(str) | st.sampled_from(["true", URI, ART])),
                max_size=8))
def test_arbitrary_pairs_parse_or_raise_param_error(pairs: list[tuple[str, str]]) -> None:
    try:
        got = parse_params(TRACKS, pairs)
    except ParamError as e:
        assert str(e).split(":")[0].split("[")[0] in TRACKS.params
    else:
        assert 1 <= got["limit"] <= 100 and set(got) <= set(TRACKS.params)


def test_output_validation() -> None:
    page = {"tracks": [track_view(), track_view(album=None, viewer={"like": URI},
                                                embed={"$type": "fm.plyr.test.defs#imageEmbed",
                                                       "url": "https://cdn.test/a.jpg"})]}
    assert validate_output(TRACKS, page) is None
    assert validate_output(TRACK, track_view()) is None
    assert validate_output(TRACKS, {}) == "tracks: missing required field"
    assert validate_output(TRACKS, []) == "output: expected object, got array"
    bad = {
        "tracks[0].title: missing required field": {k: v for k, v in track_view().items() if k != "title"},
        "tracks[0].likeCount: expected integer, got string": track_view(likeCount="2"),
        "tracks[0].likeCount: integer -1 out of range": track_view(likeCount=-1),
        "tracks[0].uri: invalid at-uri": track_view(uri="https://x.test"),
        "tracks[0].author.did: invalid did": track_view(author={"did": "alice", "handle": "a.test"}),
        "tracks[0].author.handle: missing required field": track_view(author={"did": ART}),
        "tracks[0].indexedAt: invalid datetime": track_view(indexedAt="2026-11-01"),
        "tracks[0].viewer.like: expected string, got integer": track_view(viewer={"like": 3}),
        "tracks[0].embed: $type 'x.y#z' is not allowed": track_view(embed={"$type": "x.y#z"}),
        "tracks[0].embed.url: missing required field": track_view(embed={"$type": "fm.plyr.test.defs#imageEmbed"}),
        "tracks[0].labels[0].src: missing required field": track_view(labels=[{"uri": URI, "val": "x",
                                                                                "cts": "2026-11-01T10:00:00Z"}]),
        "tracks[0].cid: invalid cid": track_view(cid="not a cid"),
        "tracks[0].title: expected string, got null": track_view(title=None),
    }  # fmt: skip
    for needle, view in bad.items():
        err = validate_output(TRACKS, {"tracks": [view]})
        assert err is not None and err.startswith(needle), (needle, err)


def test_bad_query_lexicons_fail_at_load() -> None:
    def doc(params: dict[str, Any]) -> dict[str, Any]:
        return {"lexicon": 1, "id": "fm.plyr.test.bad", "defs": {"main": {"type": "query", "parameters": params}}}

    for params, needle in [
        ({"type": "object", "properties": {}}, "type 'params'"),
        ({"type": "params", "properties": {"x": {"type": "unknown"}}}, "unsupported type"),
        ({"type": "params", "properties": {"x": {"type": "array", "items": {"type": "blob"}}}}, "unsupported"),
        ({"type": "params", "required": ["y"], "properties": {}}, "not defined"),
    ]:
        with pytest.raises(ValueError, match=needle):
            load_queries(LexiconSet([doc(params)]))
