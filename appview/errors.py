"""Read-side errors: raised by queries and views, rendered by each surface in its own dialect
(plyr REST: `{"detail": …}`; XRPC: `{"error": …, "message": …}`)."""

from __future__ import annotations


class ReadError(Exception):
    status = 400
    name = "InvalidRequest"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParam(ReadError):
    pass


class NotFound(ReadError):
    status = 404
    name = "NotFound"


class ActorNotFound(NotFound):
    name = "ActorNotFound"


class RecordNotFound(NotFound):
    name = "RecordNotFound"
