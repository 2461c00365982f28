"""Error rendering: plyr.fm's `{"detail": …}` on REST paths, `{"error", "message"}` under /xrpc.
Bad parameters are 400 with a message naming the parameter, never 422 lists or 500s."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from appview.errors import ReadError


def _render(request: Request, status: int, name: str, message: str) -> JSONResponse:
    if request.url.path.startswith("/xrpc/"):
        return JSONResponse({"error": name, "message": message}, status_code=status)
    return JSONResponse({"detail": message}, status_code=status)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(ReadError)
    async def read_error(request: Request, exc: ReadError) -> JSONResponse:
        return _render(request, exc.status, exc.name, exc.message)

    @app.exception_handler(RequestValidationError)
    async def bad_params(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _render(request, 400, "InvalidRequest", _describe(exc))
