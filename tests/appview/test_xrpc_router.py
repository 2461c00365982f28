"""XRPC queries end to end through the ASGI app: params → viewer → handler → lexicon-checked JSON, for
XrpcRouter handlers and for plain FastAPI routes behind the LexiconGuard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import nullcontext
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from appview.auth import ServiceAuthVerifier, Viewer
from appview.xrpc import ActorNotFound, NotFound, XrpcRouter, install
from tests.appview.authkit import SERVICE_DID, FakePlc, Key, did_doc, make_jwt, plc_did
from tests.appview.xrpckit import ART, LEX, URI, track_view

ALICE = plc_did(1)


class Author(BaseModel):
    did: str
    handle: str
    display_name: str | None = Field(default=None, alias="displayName")


class TrackView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    uri: str
    cid: str
    author: Author
    title: str
    indexed_at: str = Field(alias="indexedAt")
    like_count: int | None = Field(default=None, alias="likeCount")


class TracksPage(BaseModel):
    tracks: list[TrackView]
    cursor: str | None = None


class ReadErrorLike(Exception):  # the shape of the shared read side's errors (status, name, message)
    status, name = 404, "RecordNotFound"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def build(validate_output: bool = True) -> tuple[FastAPI, XrpcRouter, FakePlc]:
    plc = FakePlc()
    xrpc = XrpcRouter(LEX, validate_output=validate_output, connection=lambda request: nullcontext("conn"))
    seen: dict[str, Any] = {}

    @xrpc.method("fm.plyr.test.getTracks")
    async def get_tracks(params: dict[str, Any], viewer: Viewer | None, conn: Any) -> TracksPage:
        assert conn == "conn"
        seen.update(params=params, viewer=viewer)
        if params.get("artist") == "nobody.test":
            raise ActorNotFound("actor not found: nobody.test")
        if params.get("cursor") == "bad-output":
            return TracksPage.model_validate({"tracks": [track_view(uri="not-a-uri")]})
        if params.get("cursor") == "boom":
            raise RuntimeError("a bug")
        n = min(params["limit"], 3)
        return TracksPage(tracks=[TrackView.model_validate(track_view()) for _ in range(n)], cursor="next")

    @xrpc.method("fm.plyr.test.getTrack")
    async def get_track(params: dict[str, Any], viewer: Viewer | None, conn: Any) -> dict[str, Any]:
        if params["uri"].endswith("missing"):
            raise NotFound(f"track not found: {params['uri']}")
        if params["uri"].endswith("gone"):
            raise ReadErrorLike("record is gone")
        return track_view(viewer={"like": URI} if viewer else {})

    @xrpc.method("fm.plyr.test.getViewer", auth="required")
    async def get_viewer(params: dict[str, Any], viewer: Viewer | None, conn: Any) -> dict[str, Any]:
        assert viewer is not None
        return {"did": viewer.did}

    app = FastAPI()
    app.state.auth = ServiceAuthVerifier(plc.resolver(), SERVICE_DID)
    app.state.seen = seen
    app.include_router(xrpc.api_router())
    install(app, LEX, validate_output=validate_output)
    return app, xrpc, plc


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app, _, _ = build()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


async def test_typed_response_with_defaults(client: httpx.AsyncClient) -> None:
    r = await client.get("/xrpc/fm.plyr.test.getTracks", params={"limit": "2", "ignored": "x"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["cursor"] == "next" and len(body["tracks"]) == 2
    assert body["tracks"][0]["indexedAt"] == "2026-11-01T10:00:00.000Z"
    assert "displayName" not in body["tracks"][0]["author"]  # None fields are omitted, as lexicons expect
    assert client.app.state.seen["params"] == {"limit": 2, "sort": "new", "hidden": False}  # type: ignore[attr-defined]
    assert client.app.state.seen["viewer"] is None  # type: ignore[attr-defined]


async def test_repeated_keys_and_utf8(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/xrpc/fm.plyr.test.getTracks?uris={quote(URI)}&uris={quote(URI)}&cursor=caf%C3%A9")
    assert r.status_code == 200
    assert client.app.state.seen["params"]["uris"] == [URI, URI]  # type: ignore[attr-defined]
    assert client.app.state.seen["params"]["cursor"] == "café"  # type: ignore[attr-defined]
    r = await client.get("/xrpc/fm.plyr.test.getTracks?cursor=%FF")
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequest"


@pytest.mark.parametrize("query,message", [
    ("limit=0", "limit: integer 0 out of range [1, 100]"),
    ("limit=abc", "limit: expected an integer, got 'abc'"),
    ("artist=%20", "artist: invalid at-identifier ' '"),
    ("limit=1&limit=2", "limit: expected a single value, got several"),
])  # fmt: skip
async def test_bad_params_are_400(client: httpx.AsyncClient, query: str, message: str) -> None:
    r = await client.get(f"/xrpc/fm.plyr.test.getTracks?{query}")
    assert r.status_code == 400 and r.json() == {"error": "InvalidRequest", "message": message}


async def test_required_param(client: httpx.AsyncClient) -> None:
    r = await client.get("/xrpc/fm.plyr.test.getTrack")
    assert r.status_code == 400 and r.json()["message"] == "uri: missing required parameter"


async def test_not_found_is_404_with_a_specific_name(client: httpx.AsyncClient) -> None:
    r = await client.get("/xrpc/fm.plyr.test.getTracks", params={"artist": "nobody.test"})
    assert r.status_code == 404 and r.json() == {"error": "ActorNotFound", "message": "actor not found: nobody.test"}
    r = await client.get("/xrpc/fm.plyr.test.getTrack", params={"uri": f"at://{ART}/fm.plyr.track/missing"})
    assert r.status_code == 404 and r.json()["error"] == "NotFound"
    r = await client.get("/xrpc/fm.plyr.test.getTrack", params={"uri": f"at://{ART}/fm.plyr.track/gone"})
    assert r.status_code == 404 and r.json() == {"error": "RecordNotFound", "message": "record is gone"}


async def test_unknown_methods_and_verbs(client: httpx.AsyncClient) -> None:
    for path in ("/xrpc/fm.plyr.test.nope", "/xrpc/fm.plyr.test.getNothing", "/xrpc/", "/xrpc/a/b"):
        r = await client.get(path)
        assert r.status_code == 501 and r.json()["error"] == "MethodNotImplemented", path
    r = await client.post("/xrpc/fm.plyr.test.getTracks")
    assert r.status_code == 400 and r.json()["message"] == "Incorrect HTTP method (POST) expected GET"


async def test_output_validation_catches_bad_responses(client: httpx.AsyncClient) -> None:
    r = await client.get("/xrpc/fm.plyr.test.getTracks", params={"cursor": "bad-output"})
    assert r.status_code == 500 and "tracks[0].uri: invalid at-uri" in r.json()["message"]
    app, _, _ = build(validate_output=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        assert (await c.get("/xrpc/fm.plyr.test.getTracks", params={"cursor": "bad-output"})).status_code == 200


async def test_handler_bugs_are_500s(client: httpx.AsyncClient) -> None:
    r = await client.get("/xrpc/fm.plyr.test.getTracks", params={"cursor": "boom"})
    assert r.status_code == 500


async def test_viewer(client: httpx.AsyncClient) -> None:
    plc: FakePlc = client.app.state.auth.resolver._client._transport.handler.__self__  # type: ignore[attr-defined]
    key = Key("k256")
    plc.docs[ALICE] = did_doc(ALICE, key)
    r = await client.get("/xrpc/fm.plyr.test.getViewer")
    assert r.status_code == 401 and r.json()["error"] == "AuthenticationRequired"
    token = make_jwt(key, ALICE, lxm="fm.plyr.test.getViewer")
    r = await client.get("/xrpc/fm.plyr.test.getViewer", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json() == {"did": ALICE}
    # the same token is bound to getViewer: refused for another method
    r = await client.get("/xrpc/fm.plyr.test.getTrack", params={"uri": URI},
                         headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"] == "BadJwtLexiconMethod"
    r = await client.get("/xrpc/fm.plyr.test.getTrack", params={"uri": URI},
                         headers={"authorization": f"Bearer {make_jwt(key, ALICE)}"})
    assert r.status_code == 200 and r.json()["viewer"] == {"like": URI}


async def test_openapi_lists_methods_and_parameters(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/xrpc/fm.plyr.test.getTracks"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}
    assert params["uris"]["schema"]["type"] == "array" and params["uris"]["schema"]["maxItems"] == 3
    assert "TracksPage" in str(op["responses"]["200"])
    assert "/xrpc/fm.plyr.test.getNothing" not in spec["paths"]


def test_registration_errors() -> None:
    xrpc = XrpcRouter(LEX)

    async def handler(params: dict[str, Any], viewer: Viewer | None, conn: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="no query lexicon"):
        xrpc.add("fm.plyr.test.unknown", handler)
    xrpc.add("fm.plyr.test.getViewer", handler)
    with pytest.raises(ValueError, match="already"):
        xrpc.add("fm.plyr.test.getViewer", handler)


_query = st.lists(st.tuples(st.sampled_from(["limit", "cursor", "uris", "hidden", "years", "artist", "x", ""]),
                            st.text(max_size=20)), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=_query, raw=st.binary(max_size=40))
def test_arbitrary_query_strings_never_500(pairs: list[tuple[str, str]], raw: bytes) -> None:
    app, _, _ = build()

    async def run() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            r1 = await c.get("/xrpc/fm.plyr.test.getTracks", params=pairs)  # type: ignore[arg-type]
            qs = quote(raw, safe="=&")
            r2 = await c.get(f"/xrpc/fm.plyr.test.getTracks?{qs}")
            for r in (r1, r2):
                assert r.status_code in (200, 400), r.text
                assert r.status_code == 200 or r.json()["error"] == "InvalidRequest"

    asyncio.run(run())


def plain_app() -> FastAPI:
    """XRPC methods written as plain FastAPI routes (the lead's style), guarded by install()."""
    app = FastAPI()

    @app.get("/xrpc/fm.plyr.test.getTrack")
    async def get_track(uri: str) -> dict[str, Any]:
        if uri.endswith("missing"):
            raise NotFound(f"track not found: {uri}")
        return track_view(uri=uri, likeCount=-1 if uri.endswith("broken") else 1)

    @app.get("/xrpc/fm.plyr.test.whoami")  # no lexicon: not guarded, still served
    async def whoami() -> dict[str, Any]:
        return {"me": None}

    install(app, LEX, validate_output=True)
    return app


async def test_guard_for_plain_routes() -> None:
    transport = httpx.ASGITransport(app=plain_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        ok = await c.get("/xrpc/fm.plyr.test.getTrack", params={"uri": URI})
        assert ok.status_code == 200 and ok.json()["uri"] == URI
        bad = await c.get("/xrpc/fm.plyr.test.getTrack", params={"uri": "https://x.test/a"})
        assert bad.status_code == 400 and bad.json() == {"error": "InvalidRequest",
                                                         "message": "uri: invalid at-uri 'https://x.test/a'"}
        r = await c.get("/xrpc/fm.plyr.test.getTrack")
        assert r.status_code == 400 and r.json()["message"] == "uri: missing required parameter"
        r = await c.get("/xrpc/fm.plyr.test.getTrack", params={"uri": URI[:-2] + "missing"})
        assert r.status_code == 404 and r.json()["error"] == "NotFound"
        r = await c.get("/xrpc/fm.plyr.test.getTrack", params={"uri": URI[:-2] + "broken"})
        assert r.status_code == 500 and "likeCount: integer -1 out of range" in r.json()["message"]
        r = await c.post("/xrpc/fm.plyr.test.getTrack")
        assert r.status_code == 400 and "expected GET" in r.json()["message"]
        assert (await c.get("/xrpc/fm.plyr.test.whoami")).json() == {"me": None}
        r = await c.get("/xrpc/fm.plyr.test.getTracks")  # a lexicon without a route
        assert r.status_code == 501 and r.json()["error"] == "MethodNotImplemented"
