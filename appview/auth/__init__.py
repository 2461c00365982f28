"""Viewer authentication: atproto inter-service auth JWTs (``jwt``), FastAPI dependencies (``deps``), and
our did:web document (``did_doc``). Wiring: ``install(app, settings)`` in ``create_app`` (``setup``)."""

from appview.auth.deps import (
    OptionalViewer,
    OptionalViewerDid,
    RequiredViewer,
    authenticate,
    bearer_token,
    error_response,
    viewer_did,
)
from appview.auth.did_doc import did_document, did_router
from appview.auth.jwt import AuthError, ServiceAuthVerifier, Viewer, parse_claims
from appview.auth.setup import install, install_errors

__all__ = ["AuthError", "OptionalViewer", "OptionalViewerDid", "RequiredViewer", "ServiceAuthVerifier", "Viewer",
           "authenticate", "bearer_token", "did_document", "did_router", "error_response", "install",
           "install_errors", "parse_claims", "viewer_did"]
