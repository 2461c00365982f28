"""``install(app, lexicons)``: the lexicon's rules for every ``/xrpc/<nsid>`` route, however it is written.

* ``LexiconGuard`` (ASGI middleware): a request for a query lexicon is refused with 400 ``InvalidRequest``
  when its parameters break the lexicon (formats, bounds, enums, required) or its verb is not GET, before
  any route runs; with ``validate_output`` each 200 JSON response is checked against the output schema and
  a mismatch becomes a 500 (a bug, surfaced in tests). Plain FastAPI routes get the same guarantees as
  ``XrpcRouter`` ones.
* ``XrpcError`` raised anywhere renders as ``{"error", "message"}``.
* A last catch-all route: any other ``/xrpc/…`` is 501 ``MethodNotImplemented``, so install after every
  XRPC route is mounted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from appview.xrpc.errors import XrpcError, error_response
from core.lexicon import LexiconSet
from core.lexicon_methods import ParamError, QueryMethod, load_queries, parse_params, query_pairs, validate_output

log = structlog.get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
PREFIX = "/xrpc/"


async def _send_error(send: Send, status: int, error: str, message: str) -> None:
    body = orjson.dumps({"error": error, "message": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class LexiconGuard:
    def __init__(self, app: ASGIApp, methods: Mapping[str, QueryMethod], validate_output: bool = False) -> None:
        self.app, self.methods, self.validate_output = app, methods, validate_output

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = self.methods.get(scope["path"][len(PREFIX):]) if (
            scope["type"] == "http" and scope["path"].startswith(PREFIX)) else None  # fmt: skip
        if method is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _send_error(send, 400, "InvalidRequest", f"Incorrect HTTP method ({scope['method']}) expected GET")
            return
        try:
            parse_params(method, query_pairs(scope["query_string"]))
        except ParamError as e:
            await _send_error(send, 400, "InvalidRequest", str(e))
            return
        if not self.validate_output or method.output is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _Checked(method, send).send)


class _Checked:
    """Buffers a response, checks a 200 JSON body against the lexicon, then sends it (or a 500)."""

    def __init__(self, method: QueryMethod, send: Send) -> None:
        self.method, self.downstream = method, send
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.downstream(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(self.chunks)
        if (err := self._error(body)) is not None:
            log.error("xrpc_output_invalid", nsid=self.method.nsid, error=err)
            await _send_error(self.downstream, 500, "InternalServerError",
                              f"{self.method.nsid} output does not match its lexicon: {err}")
            return
        await self.downstream(self.start)
        await self.downstream({"type": "http.response.body", "body": body})

    def _error(self, body: bytes) -> str | None:
        assert self.start is not None
        headers = dict(self.start.get("headers", ()))
        if self.start["status"] != 200 or not headers.get(b"content-type", b"").startswith(b"application/json"):
            return None
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            return "body is not JSON"
        return validate_output(self.method, value)


def install(app: FastAPI, lexicons: LexiconSet, *, validate_output: bool = False) -> None:
    """Guard, error rendering and the 501 fallback; call after all XRPC routes are mounted."""
    methods = load_queries(lexicons)
    app.add_middleware(LexiconGuard, methods=methods, validate_output=validate_output)

    @app.exception_handler(XrpcError)
    async def xrpc_error(request: Request, exc: XrpcError) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.message)

    @app.api_route(PREFIX + "{nsid:path}", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"],
                   include_in_schema=False)
    async def not_implemented(nsid: str) -> JSONResponse:
        return error_response(501, "MethodNotImplemented", "Method Not Implemented")
