"""Wiring viewer auth into an app: one call in ``create_app``, ``auth.install(app, settings)``.

It wraps the app's lifespan so the DID resolver (PLC_URL) and the ``ServiceAuthVerifier`` (SERVICE_DID)
live exactly as long as the app (``app.state.identity``, ``app.state.auth``), renders ``AuthError`` per
surface, and serves ``/.well-known/did.json``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from appview.auth.deps import error_response
from appview.auth.did_doc import did_router
from appview.auth.jwt import AuthError, ServiceAuthVerifier
from appview.settings import AppviewSettings
from core.identity import IdentityResolver


def install_errors(app: FastAPI) -> None:
    """Render AuthError per surface (XRPC under /xrpc/, plyr REST elsewhere)."""

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        return error_response(request, exc)


def install(app: FastAPI, settings: AppviewSettings) -> None:
    install_errors(app)
    app.include_router(did_router(settings.service_did, settings.public_url))
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with IdentityResolver(settings.plc_url, allow_private=settings.outbound_allow_private) as identity:
            app.state.identity = identity
            app.state.auth = ServiceAuthVerifier(identity, settings.service_did)
            async with inner(app) as state:
                yield state

    app.router.lifespan_context = lifespan
