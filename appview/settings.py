"""Read-side settings (environment only)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from pydantic import model_validator

from core.blobstore.settings import BlobSettings


def did_web_for(public_url: str) -> str:
    """``https://api.example`` → ``did:web:api.example``; ``http://localhost:8080`` → ``did:web:localhost%3A8080``."""
    netloc = urlsplit(public_url).netloc.rsplit("@", 1)[-1]
    return "did:web:" + quote(netloc.lower(), safe=".-")


class AppviewSettings(BlobSettings):
    # --- viewer auth (appview/auth) and XRPC (appview/xrpc) ---
    # Where the API is reachable; our did:web document (/.well-known/did.json) points PDS proxies here.
    public_url: str = ""  # default: http://localhost:<PORT>
    # The audience service-auth JWTs must carry; default did:web:<public host> (port percent-encoded).
    service_did: str = ""
    plc_url: str = "https://plc.directory"
    # DEVELOPMENT ONLY: let JWT-issuer resolution reach private/loopback addresses and plain http (local PDS).
    outbound_allow_private: bool = False
    # Check every XRPC response against its lexicon (on in tests; off in production for speed).
    xrpc_validate_output: bool = False

    @model_validator(mode="after")
    def _default_service_did(self) -> AppviewSettings:
        if not self.public_url:
            self.public_url = f"http://localhost:{self.port}"
        if not self.service_did:
            self.service_did = did_web_for(self.public_url)
        return self

    host: str = "127.0.0.1"
    port: int = 8080
    db_pool_max: int = 10
    # Anonymous reads are cached until the projections move (or this many seconds pass).
    response_cache: bool = True
    response_cache_ttl_s: float = 60.0
    response_cache_stale_s: float = 1.0  # how long an entry may outlive a projection change
