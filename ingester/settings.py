"""Write-side settings (environment only)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.settings import CoreSettings


class IngesterSettings(CoreSettings):
    # Comma-separated: a relay (wss://bsky.network) or PDS hosts followed directly.
    firehose_hosts: str = Field(default="wss://bsky.network")
    # Comma-separated Jetstream hosts (e.g. wss://jetstream.us-east.bsky.network); empty: none. Their events
    # are unverified: set PROJECT_UNVERIFIED to serve them (FIREHOSE_HOSTS="" for a Jetstream-only ingester).
    jetstream_urls: str = ""
    jetstream_version: Literal["v1", "v2"] = "v2"  # v2 subscribeEvents (seq cursor) or v1 /subscribe (time_us)
    jetstream_compress: bool = True  # v2: dict-zstd frames, when the host serves its dictionary
    plc_url: str = "https://plc.directory"
    # Project events we could not verify (DID unresolvable). Off: only verified data is served.
    project_unverified: bool = False
    ingest_batch_max: int = 2000
    projector_batch: int = 5000
    did_cache_ttl_s: float = 3600.0
    # `appview ingest` alone has no API: serve /metrics on this port when set (`run` serves it on the API).
    metrics_port: int | None = None

    @property
    def hosts(self) -> list[str]:
        return [h.strip() for h in self.firehose_hosts.split(",") if h.strip()]

    @property
    def jetstreams(self) -> list[str]:
        return [u.strip() for u in self.jetstream_urls.split(",") if u.strip()]
