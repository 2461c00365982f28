"""Mounting XRPC query handlers: ``GET /xrpc/<nsid>`` → params → viewer → handler → JSON.

Each request: the query string is parsed by the method's lexicon (400 ``InvalidRequest`` naming the bad
parameter), the viewer is authenticated (``appview.auth``, with ``lxm`` = the method), a pooled connection
is taken, and ``handler(params, viewer, conn)`` returns a pydantic model (or a JSON-able mapping) that is
serialised without ``None`` fields (lexicon optionals are omitted, not null). With ``validate_output``
every response is checked against the lexicon's output schema and a mismatch is a 500: a bug, surfaced in
tests. The 501 for unknown methods and the checks for plain FastAPI routes are in ``mount.install``.
"""

from __future__ import annotations

import time
import typing
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import orjson
import pydantic_core
import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import Counter, Histogram
from pydantic import BaseModel

from appview.auth import AuthError, Viewer, authenticate
from appview.deps import read_connection
from appview.xrpc.errors import as_xrpc, error_response
from core.lexicon import LexiconSet
from core.lexicon_methods import (
    Param,
    ParamError,
    QueryMethod,
    load_queries,
    parse_params,
    query_pairs,
    validate_output,
)

log = structlog.get_logger(__name__)

REQUESTS = Counter("appview_xrpc_responses_total", "XRPC responses by method and status", ["nsid", "status"])
LATENCY = Histogram("appview_xrpc_seconds", "XRPC handler latency by method", ["nsid"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))

Auth = Literal["optional", "required"]
Handler = Callable[[dict[str, Any], Viewer | None, Any], Awaitable[BaseModel | Mapping[str, Any] | Response]]
ConnFactory = Callable[[Request], AbstractAsyncContextManager[Any]]
JSON = "application/json"


def _pool_connection(request: Request) -> AbstractAsyncContextManager[Any]:
    return read_connection(request)


class XrpcRouter:
    """Handlers for the query lexicons in ``lexicons``; ``api_router()`` builds the FastAPI routes."""

    def __init__(self, lexicons: LexiconSet, *, validate_output: bool = False,
                 connection: ConnFactory = _pool_connection) -> None:
        self.methods = load_queries(lexicons)
        self.validate_output, self.connection = validate_output, connection
        self.handlers: dict[str, tuple[Handler, Auth]] = {}

    def add(self, nsid: str, handler: Handler, *, auth: Auth = "optional") -> None:
        if nsid not in self.methods:
            raise ValueError(f"no query lexicon {nsid!r} (known: {', '.join(sorted(self.methods)) or 'none'})")
        if nsid in self.handlers:
            raise ValueError(f"{nsid} already has a handler")
        self.handlers[nsid] = (handler, auth)

    def method(self, nsid: str, *, auth: Auth = "optional") -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(nsid, handler, auth=auth)
            return handler

        return register

    def api_router(self) -> APIRouter:
        router = APIRouter(tags=["xrpc"])
        for nsid in sorted(self.handlers):
            self._route(router, nsid)
        return router

    def _route(self, router: APIRouter, nsid: str) -> None:
        method, (handler, auth) = self.methods[nsid], self.handlers[nsid]

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                return await self._call(request, method, handler, auth)
            finally:
                LATENCY.labels(nsid).observe(time.perf_counter() - started)

        router.add_api_route(f"/xrpc/{nsid}", endpoint, methods=["GET"], name=nsid, operation_id=nsid,
                             summary=nsid, description=method.description, response_model=_model(handler),
                             openapi_extra={"parameters": [_openapi_param(p) for p in method.params.values()]})

    async def _call(self, request: Request, method: QueryMethod, handler: Handler, auth: Auth) -> Response:
        nsid = method.nsid
        try:
            params = parse_params(method, query_pairs(request.scope["query_string"]))
        except ParamError as e:
            return self._error(nsid, 400, "InvalidRequest", str(e))
        try:
            viewer = await authenticate(request, required=auth == "required", lxm=nsid)
            async with self.connection(request) as conn:
                result = await handler(params, viewer, conn)
        except AuthError as e:
            return self._error(nsid, e.status, e.error, e.message, e.headers)
        except Exception as e:
            if (known := as_xrpc(e)) is None:
                raise
            return self._error(nsid, *known)
        if isinstance(result, Response):
            REQUESTS.labels(nsid, str(result.status_code)).inc()
            return result
        body = pydantic_core.to_json(result, by_alias=True, exclude_none=True)
        if self.validate_output and (err := validate_output(method, orjson.loads(body))) is not None:
            log.error("xrpc_output_invalid", nsid=nsid, error=err)
            return self._error(nsid, 500, "InternalServerError", f"{nsid} output does not match its lexicon: {err}")
        REQUESTS.labels(nsid, "200").inc()
        return Response(body, media_type=method.output_encoding or JSON)

    @staticmethod
    def _error(nsid: str, status: int, error: str, message: str,
               headers: Mapping[str, str] | None = None) -> Response:
        REQUESTS.labels(nsid, str(status)).inc()
        return error_response(status, error, message, dict(headers) if headers else None)


def _model(handler: Handler) -> type[BaseModel] | None:
    """The handler's declared pydantic return type, for /docs (responses are serialised by us)."""
    try:
        ret = typing.get_type_hints(handler).get("return")
    except Exception:  # unresolvable forward refs only cost the docs their schema
        return None
    return ret if isinstance(ret, type) and issubclass(ret, BaseModel) else None


_OPENAPI_KEYS = ("minimum", "maximum", "maxLength", "minLength", "enum", "default", "format", "description")


def _openapi_param(p: Param) -> dict[str, Any]:
    item = p.schema.get("items", p.schema) if p.array else p.schema
    schema: dict[str, Any] = {"type": p.type} | {k: item[k] for k in _OPENAPI_KEYS if k in item}
    if "knownValues" in item:
        schema["examples"] = list(item["knownValues"])
    if p.array:
        schema = {"type": "array", "items": schema} | {k: p.schema[k] for k in ("maxLength", "minLength")
                                                         if k in p.schema}  # fmt: skip
        schema = {("maxItems" if k == "maxLength" else "minItems" if k == "minLength" else k): v
                  for k, v in schema.items()}  # fmt: skip
    return {"name": p.name, "in": "query", "required": p.required, "schema": schema,
            "description": p.schema.get("description", ""), "style": "form", "explode": True}
