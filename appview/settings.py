"""Read-side settings (environment only)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from core.blobstore.settings import BlobSettings
from core.settings import SECRET
from core.settings_checks import (
    HttpUrl,
    Port,
    blank_is_none,
    check_bind_host,
    check_database_url,
    check_database_urls,
    check_did_or_empty,
    one_url,
)


def did_web_for(public_url: str) -> str:
    """``https://api.example`` → ``did:web:api.example``; ``http://localhost:8080`` → ``did:web:localhost%3A8080``."""
    netloc = urlsplit(public_url).netloc.rsplit("@", 1)[-1]
    return "did:web:" + quote(netloc.lower(), safe=".-")


class AppviewSettings(BlobSettings):
    # --- viewer auth (appview/auth) and XRPC (appview/xrpc) ---
    # Where the API is reachable; our did:web document (/.well-known/did.json) points PDS proxies here.
    public_url: Annotated[str, AfterValidator(one_url("https", "http"))] = ""  # default: http://localhost:<PORT>
    # The audience service-auth JWTs must carry; default did:web:<public host> (port percent-encoded).
    service_did: Annotated[str, AfterValidator(check_did_or_empty)] = ""
    plc_url: HttpUrl = "https://plc.directory"
    # DEVELOPMENT ONLY: let JWT-issuer resolution reach private/loopback addresses and plain http (local PDS).
    outbound_allow_private: bool = False
    # Check every XRPC response against its lexicon (on in tests; off in production for speed).
    xrpc_validate_output: bool = False

    @field_validator("db_pool_min")
    @classmethod
    def _min_at_most_max(cls, value: int, info: ValidationInfo) -> int:
        high = info.data.get("db_pool_max")
        if high is not None and value > high:
            raise ValueError(f"must be ≤ DB_POOL_MAX ({high})")
        return value

    @model_validator(mode="after")
    def _default_service_did(self) -> AppviewSettings:
        if not self.public_url:
            self.public_url = f"http://localhost:{self.port}"
        if not self.service_did:
            self.service_did = did_web_for(self.public_url)
        return self

    host: Annotated[str, AfterValidator(check_bind_host)] = "127.0.0.1"
    port: Port = 8080
    # --- workers and Postgres connections (README "Workers and connections") ---
    api_workers: int = Field(default=1, ge=1, le=64)  # API processes sharing the port (`serve`/`run --workers`)
    db_pool_max: int = Field(default=10, ge=1, le=1000)  # per API process: connections at most
    db_pool_min: int = Field(default=1, ge=0, le=1000)  # per API process: connections kept open while idle
    db_pool_max_idle_s: float = Field(default=60.0, gt=0, le=86400)  # idle this long above the minimum: closed
    # false behind a transaction-mode PgBouncer (< 1.21, or max_prepared_statements = 0): psycopg never prepares.
    db_prepared_statements: bool = True
    # How Postgres plans our prepared statements (psycopg prepares a statement on its 5th run on a connection).
    # `auto` replans the hydration statements on every run (their one-row custom plan always looks cheaper than
    # the generic one, and planning them costs ~10x running them): generic plans by default.
    db_plan_cache_mode: Literal["auto", "force_generic_plan", "force_custom_plan"] = "force_generic_plan"
    # LISTEN needs a real session: a direct URL when DATABASE_URL is a transaction-mode pooler (default: DATABASE_URL).
    database_listen_url: Annotated[str | None, BeforeValidator(blank_is_none), AfterValidator(check_database_url)] = \
        Field(default=None, json_schema_extra=SECRET)
    # Anonymous reads are cached until the projections move (or this many seconds pass).
    response_cache: bool = True
    response_cache_ttl_s: float = Field(default=60.0, gt=0, le=86400)
    # How long an entry may outlive a projection change.
    response_cache_stale_s: float = Field(default=1.0, ge=0, le=3600)

    # --- /health and /ready (appview/health.py), from the ingester's component_health heartbeats ---
    # auto: ready needs a healthy ingester only if one has ever published heartbeats here (a serve-only
    # deployment without an ingester is ready); true: always (no heartbeat = not ready); false: never.
    ready_requires_ingest: Literal["auto", "true", "false"] = "auto"
    health_stale_s: float = Field(default=30.0, gt=0, le=86400)  # a heartbeat older than this: ingester gone
    source_down_grace_s: float = Field(default=120.0, ge=0, le=86400)  # a source may be disconnected this long
    projector_stuck_s: float = Field(default=60.0, gt=0, le=86400)  # behind the log with no progress this long
    health_timeout_s: float = Field(default=2.0, gt=0, le=60)  # bound on the database reads of /health, /ready
    # --- CORS (appview/cors.py): which browser origins may read us, with credentials ---
    # Comma-separated; an item starting with `^` is a regex matched against the whole Origin (no commas
    # inside), any other item an exact origin (`https://plyr.fm`); empty turns CORS off. The default lets
    # any local development server read us: http://localhost, 127.0.0.1 and [::1], any port.
    # The operator's contact address, shown by /config where plyr.fm shows its legal contacts (empty: none).
    contact_email: str = ""
    cors_origins: str = r"^http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?$"

    # --- read replicas (appview/reads.py, appview/replicas.py): empty = every read goes to DATABASE_URL ---
    database_read_url: Annotated[str, AfterValidator(check_database_urls)] = Field(
        default="", description="comma-separated streaming replicas of DATABASE_URL", json_schema_extra=SECRET)
    database_read_max_lag_s: float = Field(default=30.0, gt=0, le=86400)  # further behind: not read from
    database_read_poll_s: float = Field(default=1.0, gt=0, le=60)  # how often each replica's lag is measured
    database_read_timeout_s: float = Field(default=2.0, gt=0, le=60)  # wait for a replica connection at most
