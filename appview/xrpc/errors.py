"""XRPC errors: ``{"error": <Name>, "message": …}`` with the status app.bsky uses.

Each error name has one status in every namespace (``appview.errors.XRPC_STATUS``): not-found conditions
(``NotFound``, ``ActorNotFound``, ``RecordNotFound``) are 404, a bad request 400, an unknown method 501
``MethodNotImplemented``. Read-side errors raised by shared query code (any exception carrying ``status``,
``name`` and ``message``) are rendered the same way.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from appview.errors import xrpc_status


class XrpcError(Exception):
    status = 400
    error = "InvalidRequest"

    def __init__(self, message: str, error: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if error is not None:
            self.error = error
        if status is not None:
            self.status = status


class InvalidRequest(XrpcError):
    pass


class NotFound(XrpcError):
    status = 404
    error = "NotFound"


class ActorNotFound(NotFound):
    error = "ActorNotFound"


class RecordNotFound(NotFound):
    error = "RecordNotFound"


class MethodNotImplemented(XrpcError):
    status = 501
    error = "MethodNotImplemented"


def error_response(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def as_xrpc(exc: Exception) -> tuple[int, str, str] | None:
    """(status, error, message) for errors a handler may raise on purpose; None for bugs."""
    if isinstance(exc, XrpcError):
        return exc.status, exc.error, exc.message
    status, name, message = (getattr(exc, a, None) for a in ("status", "name", "message"))
    if type(status) is int and 400 <= status < 500 and isinstance(name, str) and isinstance(message, str):
        return xrpc_status(name, status), name, message
    return None
