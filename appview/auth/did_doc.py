"""``/.well-known/did.json`` for our did:web service DID, so a PDS can resolve where to proxy.

A client asks its PDS for ``/xrpc/fm.plyr.…`` with ``atproto-proxy: <SERVICE_DID>#plyr_appview``; the PDS
resolves our DID document, takes the ``#plyr_appview`` service endpoint (PUBLIC_URL) and forwards the
call with a service-auth JWT signed by the account's key (``appview.auth.jwt``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

SERVICE_ID = "plyr_appview"
SERVICE_TYPE = "PlyrAppView"


def did_document(service_did: str, public_url: str) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": service_did,
        "service": [{"id": f"#{SERVICE_ID}", "type": SERVICE_TYPE, "serviceEndpoint": public_url.rstrip("/")}],
    }


def did_router(service_did: str, public_url: str) -> APIRouter:
    router = APIRouter()
    doc = did_document(service_did, public_url)

    @router.get("/.well-known/did.json")
    async def did_json() -> JSONResponse:
        if not service_did.startswith("did:web:"):  # a did:plc service DID is published in the PLC directory
            return JSONResponse({"detail": f"{service_did} is not a did:web"}, status_code=404)
        return JSONResponse(doc)

    return router
