"""`/openapi.json` as served: every mounted route, XRPC parameters from their lexicons, our 400s.

FastAPI's generator alone gets three things wrong for this app, so `install` post-processes its output:

* WebSocket routes are left out: `fm.plyr.sync.subscribeEvents` is documented as the GET that upgrades,
  with its lexicon's parameters.
* XRPC routes that read their query string themselves (the `fm.plyr.sync.*` and `fm.plyr.play.*`
  handlers) show no parameters, and the others show FastAPI's reading of their signature: every
  `/xrpc/<nsid>` operation gets its parameters from the lexicon (`LexiconGuard` enforces exactly those).
* Bad parameters are answered 400 with our envelope (`{"error", "message"}` under /xrpc, plyr's
  `{"detail": …}` elsewhere; `appview/rest/errors.py`, `appview/xrpc/mount.py`), never FastAPI's 422:
  every 422 becomes that 400, and every XRPC operation lists its lexicon's errors with their statuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from starlette.routing import WebSocketRoute

from appview.errors import XRPC_STATUS
from core.lexicon import LexiconSet

PREFIX = "/xrpc/"
_KEYS = ("minimum", "maximum", "maxLength", "minLength", "enum", "default", "format", "description")
_XRPC_ERROR = {"type": "object", "required": ["error", "message"],
               "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}
_REST_ERROR = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}
_SCALAR = {"string", "integer", "boolean"}


def _param(name: str, prop: Mapping[str, Any], required: bool) -> dict[str, Any]:
    array = prop.get("type") == "array"
    item = prop.get("items", {}) if array else prop
    schema: dict[str, Any] = {"type": item.get("type") if item.get("type") in _SCALAR else "string"}
    schema |= {k: item[k] for k in _KEYS if k in item and k != "description"}
    if "knownValues" in item:
        schema["examples"] = list(item["knownValues"])
    if array:
        schema = {"type": "array", "items": schema}
        schema |= {t: prop[k] for k, t in (("maxLength", "maxItems"), ("minLength", "minItems")) if k in prop}
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": prop.get("description", ""), "style": "form", "explode": True}


def lexicon_params(main: Mapping[str, Any]) -> list[dict[str, Any]]:
    """OpenAPI query parameters of a query or subscription lexicon's `main` def."""
    params = main.get("parameters") or {}
    required = set(params.get("required", ()))
    return [_param(n, p, n in required) for n, p in (params.get("properties") or {}).items()]


def _error_response(xrpc: bool, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    ref = "#/components/schemas/" + ("XrpcError" if xrpc else "RestError")
    out: dict[str, dict[str, Any]] = {}
    by_status: dict[int, list[str]] = {}
    for name in dict.fromkeys(names or ["InvalidRequest"]):
        by_status.setdefault(XRPC_STATUS.get(name, 400), []).append(name)
    by_status.setdefault(400, ["InvalidRequest"])
    for status, group in sorted(by_status.items()):
        what = ("error: " + ", ".join(group)) if xrpc else "a parameter is missing or invalid"
        out[str(status)] = {"description": what, "content": {"application/json": {"schema": {"$ref": ref}}}}
    return out


def mounted_routes(app: FastAPI) -> list[tuple[str, str, bool]]:
    """(method, path, include_in_schema) of every route the app serves (included routers flattened);
    a WebSocket route is listed as its upgrading GET."""
    out: list[tuple[str, str, bool]] = []
    for ctx in iter_route_contexts(app.routes):
        path = ctx.path_format or ctx.path
        if path is None:
            continue
        shown = bool(getattr(ctx, "include_in_schema", True))
        if isinstance(ctx.original_route, (APIWebSocketRoute, WebSocketRoute)):
            out.append(("GET", path, shown))
            continue
        out += [(m, path, shown) for m in sorted(ctx.methods or ())]
    return out


def _websocket_paths(app: FastAPI) -> list[str]:
    return [ctx.path_format or ctx.path for ctx in iter_route_contexts(app.routes)
            if isinstance(ctx.original_route, (APIWebSocketRoute, WebSocketRoute)) and ctx.path]


def _main(lexicons: LexiconSet, nsid: str) -> Mapping[str, Any] | None:
    doc = lexicons.documents.get(nsid)
    main = (doc or {}).get("defs", {}).get("main")
    return main if isinstance(main, Mapping) and main.get("type") in ("query", "subscription") else None


def _websocket_operation(nsid: str, main: Mapping[str, Any] | None) -> dict[str, Any]:
    description = ("WebSocket: send a GET with `Upgrade: websocket` and these parameters; the server upgrades "
                   "(101) and then sends one JSON text message per event. ")
    return {"operationId": nsid, "summary": nsid, "tags": ["xrpc"],
            "description": description + (main or {}).get("description", ""),
            "parameters": lexicon_params(main) if main else [],
            "responses": {"101": {"description": "Switching Protocols: the event stream follows"},
                          **_error_response(True, ["InvalidRequest"])}}


def build(app: FastAPI, lexicons: LexiconSet) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    paths: dict[str, dict[str, Any]] = schema.setdefault("paths", {})
    for path in _websocket_paths(app):
        nsid = path[len(PREFIX):] if path.startswith(PREFIX) else path
        paths.setdefault(path, {})["get"] = _websocket_operation(nsid, _main(lexicons, nsid))
    for path, ops in paths.items():
        xrpc = path.startswith(PREFIX)
        main = _main(lexicons, path[len(PREFIX):]) if xrpc else None
        for op in ops.values():
            responses = op.setdefault("responses", {})
            had_422 = responses.pop("422", None) is not None
            if main is not None and main.get("type") == "query":
                op["parameters"] = lexicon_params(main)
                op.setdefault("description", main.get("description", ""))
                names = ["InvalidRequest", *(e["name"] for e in main.get("errors", ()) if isinstance(e, Mapping))]
                responses.update(_error_response(True, names))
            elif had_422:
                responses.update(_error_response(xrpc))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["XrpcError"], components["RestError"] = _XRPC_ERROR, _REST_ERROR
    return schema


def install(app: FastAPI, lexicons: LexiconSet) -> None:
    """Serve `build(app)` as /openapi.json (computed once, on first request, after every route is mounted)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, lexicons)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
