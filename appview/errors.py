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


# One HTTP status per XRPC error name, in every namespace (fm.plyr.feed/track/list/actor/stats/search/play/
# sync and the plyr REST routes): a client can branch on either and get the same answer everywhere.
# Not-found conditions are 404 (the atproto HTTP spec's status for a missing resource); everything a
# caller got wrong is 400; an unknown method is 501.
XRPC_STATUS: dict[str, int] = {
    "InvalidRequest": 400,
    "NotFound": 404,
    "ActorNotFound": 404,
    "RecordNotFound": 404,
    "OutdatedCursor": 400,
    "FutureCursor": 400,
    "MethodNotImplemented": 501,
}


def xrpc_status(name: str, fallback: int = 400) -> int:
    return XRPC_STATUS.get(name, fallback)
