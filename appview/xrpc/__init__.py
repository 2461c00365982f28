"""XRPC queries served from our own lexicons (``lexicons/fm/plyr/…``, ``type: query``).

How to add a method:

1. Write its lexicon, ``lexicons/fm/plyr/<group>/<method>.json`` (``"type": "query"``, ``parameters`` of
   type ``params`` with boolean/integer/string or arrays of those, ``output.schema``; views shared by
   several methods go in a ``defs`` document and are referenced as ``fm.plyr.<group>.defs#trackView``).
2. Write the handler, one per NSID, in ``appview/xrpc/<group>.py``::

       @xrpc.method("fm.plyr.feed.getTracks")             # auth="required" refuses anonymous viewers
       async def get_tracks(params: dict[str, Any], viewer: Viewer | None, conn: AsyncConnection) -> TracksPage:
           ...  # params are typed and validated, defaults applied; raise NotFound("…") / InvalidRequest("…")

   returning a pydantic model whose fields are the lexicon's (``None`` fields are omitted on the wire).
3. Mount once in ``appview/app.py``: ``app.include_router(xrpc.api_router())`` (after every ``add``), with
   ``XrpcRouter(default_lexicons(), validate_output=settings.xrpc_validate_output)``; then, after every
   XRPC route, ``install(app, default_lexicons(), validate_output=…)`` (``mount.py``): lexicon checks for
   plain FastAPI ``/xrpc/`` routes too, ``XrpcError`` rendering, 501 for unknown methods.

Tests run with ``XRPC_VALIDATE_OUTPUT`` on, so every response is checked against its lexicon.
"""

from appview.xrpc.errors import (
    ActorNotFound,
    InvalidRequest,
    MethodNotImplemented,
    NotFound,
    RecordNotFound,
    XrpcError,
)
from appview.xrpc.mount import LexiconGuard, install
from appview.xrpc.router import Handler, XrpcRouter

__all__ = ["ActorNotFound", "Handler", "InvalidRequest", "LexiconGuard", "MethodNotImplemented", "NotFound",
           "RecordNotFound", "XrpcError", "XrpcRouter", "install"]
