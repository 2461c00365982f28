"""FastAPI dependencies for the viewer, and the rendering of auth failures.

``OptionalViewer`` is None without an ``Authorization`` header; ``RequiredViewer`` refuses anonymous
requests. A present but bad token is always 401 (never silently anonymous), rendered as
``{"error", "message"}`` under ``/xrpc/`` and as plyr's ``{"detail"}`` elsewhere (``setup.install``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from appview.auth.jwt import AuthError, ServiceAuthVerifier, Viewer

XRPC_PREFIX = "/xrpc/"


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("AuthenticationRequired", "expected 'Authorization: Bearer <service-auth jwt>'")
    return token


async def authenticate(request: Request, *, required: bool = False, lxm: str | None = None) -> Viewer | None:
    """The request's viewer (None if anonymous and not ``required``); raises AuthError.

    ``lxm`` defaults to the method of an ``/xrpc/<nsid>`` path; tokens bound to another method are refused.
    Plain REST routes have no method, so a token's ``lxm`` is not checked there.
    """
    header = request.headers.get("authorization")
    if header is None:
        if required:
            raise AuthError("AuthenticationRequired", "authentication required: send 'Authorization: Bearer "
                            "<jwt>' (a service-auth token for this service, or proxy through your PDS)")
        return None
    token = bearer_token(header)
    verifier: ServiceAuthVerifier | None = getattr(request.app.state, "auth", None)
    if verifier is None:
        raise AuthError("AuthUnavailable", "viewer authentication is not configured", status=503)
    path = request.url.path
    if lxm is None and path.startswith(XRPC_PREFIX):
        lxm = path[len(XRPC_PREFIX):]
    return await verifier.verify(token, lxm)


async def _optional(request: Request) -> Viewer | None:
    return await authenticate(request)


async def _required(request: Request) -> Viewer:
    viewer = await authenticate(request, required=True)
    assert viewer is not None  # authenticate raises when required and anonymous
    return viewer


async def viewer_did(request: Request) -> str | None:
    """The viewer's DID or None: a drop-in for dependencies that only need the DID."""
    viewer = await authenticate(request)
    return viewer.did if viewer else None


OptionalViewer = Annotated[Viewer | None, Depends(_optional)]
RequiredViewer = Annotated[Viewer, Depends(_required)]
OptionalViewerDid = Annotated[str | None, Depends(viewer_did)]


def error_response(request: Request, exc: AuthError) -> JSONResponse:
    if request.url.path.startswith(XRPC_PREFIX):
        body: dict[str, str] = {"error": exc.error, "message": exc.message}
    else:
        body = {"detail": exc.message}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)
