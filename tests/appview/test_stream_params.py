"""Filter and cursor parsing: property tests, and arbitrary query strings never reach a 500."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from appview.stream.params import EventFilter, XrpcError, parse_collection, parse_cursor, parse_filter, parse_limit
from tests.appview.stream_kit import stream_app

SEGMENT = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
NSIDS = st.lists(SEGMENT, min_size=3, max_size=5).map(".".join)
DIDS = st.from_regex(r"did:plc:[a-z2-7]{24}", fullmatch=True)
JUNK = st.text(max_size=40)


def qp(items: list[tuple[str, str]]) -> QueryParams:
    return QueryParams(items)


@given(nsid=NSIDS)
def test_exact_and_prefix_collections(nsid: str) -> None:
    assert parse_collection(nsid) == (nsid, False)
    stem = nsid.rsplit(".", 1)[0]
    assert parse_collection(stem + ".*") == (stem + ".", True)
    f = parse_filter(qp([("collections", stem + ".*")]))
    assert f.collection_matches(nsid) and not f.collection_matches(stem) and not f.collection_matches(stem + "x.y")


@given(value=JUNK)
def test_collection_parsing_accepts_or_raises_invalid_request(value: str) -> None:
    try:
        nsid, is_prefix = parse_collection(value)
    except XrpcError as e:
        assert e.error == "InvalidRequest" and e.status == 400
    else:
        assert value == (nsid + "*" if is_prefix else nsid)


@given(nsids=st.lists(NSIDS, max_size=5), prefixes=st.lists(NSIDS, max_size=3), dids=st.lists(DIDS, max_size=3),
       collection=NSIDS, did=DIDS, rejected=st.booleans(), include=st.booleans())
def test_filter_matches_like_a_reference(nsids: list[str], prefixes: list[str], dids: list[str], collection: str,
                                         did: str, rejected: bool, include: bool) -> None:
    items = [("collections", n) for n in nsids] + [("collections", p.rsplit(".", 1)[0] + ".*") for p in prefixes]
    items += [("dids", d) for d in dids] + [("includeRejected", "true" if include else "false")]
    f = parse_filter(qp(items))
    wanted_collection = not items[:len(nsids) + len(prefixes)] or collection in nsids or any(
        collection.startswith(p.rsplit(".", 1)[0] + ".") for p in prefixes)
    reference = wanted_collection and (not dids or did in dids) and (include or not rejected)
    assert f.matches_commit(did, collection, rejected) == reference
    assert f.matches_repo(did, "identity") == (not dids or did in dids)  # collections never gate repo events


@given(n=st.integers(0, 2**63 - 1))
def test_cursor_round_trips(n: int) -> None:
    assert parse_cursor(qp([("cursor", str(n))])) == n


@given(value=JUNK)
def test_cursor_and_limit_reject_junk_with_400(value: str) -> None:
    for parse in (lambda p: parse_cursor(p), lambda p: parse_limit(p, 100, 1000)):
        try:
            out = parse(qp([("cursor", value), ("limit", value)]))
        except XrpcError as e:
            assert e.status == 400
        else:
            assert isinstance(out, int) and str(out) == value.lstrip("0").rjust(1, "0")


def test_defaults() -> None:
    f = parse_filter(qp([]))
    assert f == EventFilter() and parse_cursor(qp([])) is None and parse_limit(qp([]), 100, 1000) == 100
    with pytest.raises(XrpcError):
        parse_filter(qp([("collections", f"a.b.c{i}") for i in range(101)]))


PARAM_NAMES = st.sampled_from(["cursor", "limit", "collections", "dids", "kinds", "includeRejected", "hydrate",
                               "uri", "rev", "at", "includeUnverified", "wantedDids", "x"])


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(items=st.lists(st.tuples(PARAM_NAMES, st.one_of(JUNK, NSIDS, DIDS, st.integers(-5, 2**64).map(str))),
                      max_size=5),
       method=st.sampled_from(["getEvents", "getRecordHistory", "getRecordAsOf"]))
async def test_arbitrary_queries_never_500(db_url: str, items: list[tuple[str, str]], method: str) -> None:
    app = stream_app(db_url)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.get(f"/xrpc/fm.plyr.sync.{method}", params=items)
    assert r.status_code in (200, 400, 404), r.text
    if r.status_code != 200:
        assert set(r.json()) >= {"error", "message"}
