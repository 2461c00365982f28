"""`/openapi.json` describes every route as served. Generic on purpose: routes are discovered from the
app itself, so a route added anywhere must show up in the document (or the test names it)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from appview.app import create_app
from appview.openapi import mounted_routes
from appview.settings import AppviewSettings
from core.lexicon import default_lexicons

# Served but not part of the API: the HTML status page, the documentation pages and the 501 fallback for unknown
# methods.
UNDOCUMENTED = {"/", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/xrpc/{nsid}"}
HTTP_METHODS = {"get", "head", "post", "put", "patch", "delete", "options"}


async def _document() -> tuple[dict[str, Any], list[tuple[str, str, bool]]]:
    app = create_app(AppviewSettings(response_cache=False), "postgresql://unused@localhost/unused")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        r = await http.get("/openapi.json")
    assert r.status_code == 200
    return r.json(), mounted_routes(app)


async def test_openapi_lists_every_mounted_route_and_nothing_else() -> None:
    doc, routes = await _document()
    served = {(m.lower(), p) for m, p, _ in routes if p not in UNDOCUMENTED}
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m in HTTP_METHODS}
    assert served - documented == set(), "mounted but missing from /openapi.json"
    assert documented - served == set(), "in /openapi.json but not mounted"
    hidden = {(m, p) for m, p, shown in routes if not shown and p not in UNDOCUMENTED}
    assert hidden == set(), "routes hidden from the schema: document them or list them in UNDOCUMENTED"


async def test_every_xrpc_lexicon_method_is_documented_with_its_lexicon_parameters() -> None:
    doc, _ = await _document()
    lex = default_lexicons()
    mains = {nsid: d["defs"]["main"] for nsid, d in lex.documents.items()
             if nsid.startswith("fm.plyr.") and d.get("defs", {}).get("main", {}).get("type") in ("query",
                                                                                                  "subscription")}
    assert "fm.plyr.sync.subscribeEvents" in mains and len(mains) >= 28
    for nsid, main in mains.items():
        op = doc["paths"].get(f"/xrpc/{nsid}", {}).get("get")
        assert op is not None, f"{nsid} is not in /openapi.json"
        props = (main.get("parameters") or {}).get("properties", {})
        required = set((main.get("parameters") or {}).get("required", ()))
        got = {p["name"]: p for p in op.get("parameters", [])}
        assert set(got) == set(props), (nsid, sorted(got), sorted(props))
        for name, p in got.items():
            assert p["in"] == "query" and p["required"] == (name in required), (nsid, name)
            want_type = props[name]["type"]
            assert p["schema"]["type"] == want_type, (nsid, name, p["schema"], want_type)
        assert "400" in op["responses"], nsid
    sub = doc["paths"]["/xrpc/fm.plyr.sync.subscribeEvents"]["get"]
    assert "upgrade" in sub["description"].lower() and "101" in sub["responses"]
    assert {p["name"] for p in doc["paths"]["/xrpc/fm.plyr.sync.getEvents"]["get"]["parameters"]} >= {
        "cursor", "limit", "collections", "dids", "kinds", "includeRejected", "hydrate"}


async def test_bad_requests_are_documented_as_our_400_never_422() -> None:
    doc, _ = await _document()
    text = json.dumps(doc)
    assert '"422"' not in text and "HTTPValidationError" not in text
    comments = doc["paths"]["/tracks/{track_id}/comments"]["get"]["responses"]["400"]
    assert comments["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/RestError"
    profile = doc["paths"]["/xrpc/fm.plyr.actor.getProfile"]["get"]["responses"]
    assert profile["400"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/XrpcError"
    assert "ActorNotFound" in profile["404"]["description"]
    assert doc["components"]["schemas"]["XrpcError"]["required"] == ["error", "message"]


async def test_the_documented_400_is_what_we_answer(db_url: str) -> None:
    app = create_app(AppviewSettings(response_cache=False), db_url)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        r = await http.get("/tracks/notanumber/comments")
        assert r.status_code == 400 and set(r.json()) == {"detail"}
        r = await http.get("/xrpc/fm.plyr.feed.getLatest", params={"limit": "0"})
        assert r.status_code == 400 and set(r.json()) == {"error", "message"}
