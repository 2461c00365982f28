"""Write-side settings (environment only)."""

from __future__ import annotations

from pydantic import Field

from core.settings import CoreSettings


class IngesterSettings(CoreSettings):
    # Comma-separated: a relay (wss://bsky.network) or PDS hosts followed directly.
    firehose_hosts: str = Field(default="wss://bsky.network")
    plc_url: str = "https://plc.directory"
    # Project events we could not verify (DID unresolvable). Off: only verified data is served.
    project_unverified: bool = False
    ingest_batch_max: int = 2000
    projector_batch: int = 5000
    did_cache_ttl_s: float = 3600.0
    # `appview ingest` alone has no API: serve /metrics on this port when set (`run` serves it on the API).
    metrics_port: int | None = None

    # Comma-separated labelers to subscribe to (`com.atproto.label.subscribeLabels`): DIDs (the
    # endpoint comes from their `#atproto_labeler` service) or host URLs. Empty: no labels.
    labelers: str = "https://moderation.plyr.fm"

    @property
    def labeler_list(self) -> list[str]:
        return [x.strip() for x in self.labelers.split(",") if x.strip()]

    @property
    def hosts(self) -> list[str]:
        return [h.strip() for h in self.firehose_hosts.split(",") if h.strip()]
