"""Viewer authentication: atproto inter-service auth JWTs (``jwt``), FastAPI dependencies (``deps``), and
our did:web document (``did_doc``). Wiring (appview/app.py): an IdentityResolver (PLC_URL) and a
``ServiceAuthVerifier`` on ``app.state.auth`` in the lifespan, ``install(app)``, ``did_router(...)``."""

from appview.auth.deps import (
    OptionalViewer,
    OptionalViewerDid,
    RequiredViewer,
    authenticate,
    bearer_token,
    error_response,
    install,
    viewer_did,
)
from appview.auth.did_doc import did_document, did_router
from appview.auth.jwt import AuthError, ServiceAuthVerifier, Viewer, parse_claims

__all__ = ["AuthError", "OptionalViewer", "OptionalViewerDid", "RequiredViewer", "ServiceAuthVerifier", "Viewer",
           "authenticate", "bearer_token", "did_document", "did_router", "error_response", "install",
           "parse_claims", "viewer_did"]
