"""Write-side settings (environment only)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.blobstore.settings import BlobSettings


class IngesterSettings(BlobSettings):
    # Comma-separated: a relay (wss://bsky.network) or PDS hosts followed directly.
    firehose_hosts: str = Field(default="wss://bsky.network")
    # Which followed hosts are relays (trusted as relays); every other host is a PDS, whose #account,
    # #identity and #sync count only for the DIDs it hosts. Configured, never detected (README "What we
    # trust from whom").
    firehose_relays: str = "bsky.network,relay1.us-east.bsky.network,relay1.us-west.bsky.network"
    # No rev (commit, #sync, getRepo snapshot) further ahead of our clock than this is accepted.
    rev_future_skew_s: float = 300.0
    # Identity resolution off the hot path: total deadline of one DID's resolution (document + handle),
    # concurrent resolutions per host (per did:web host, per PLC), parked bytes per repo and in all.
    identity_deadline_s: float = 5.0
    identity_per_host: int = 8
    park_max_repo_bytes: int = 1 << 20
    park_max_bytes: int = 64 << 20
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

    # Blob mirror (S3_* / store settings are in BlobSettings).
    blob_mirror: bool = True
    blob_fetch_concurrency: int = 8
    blob_per_pds_concurrency: int = 2
    blob_fetch_timeout_s: float = 300.0
    blob_scan_interval_s: float = 2.0
    # An unreferenced blob stays this long before it leaves the store (a quick re-reference keeps it).
    blob_release_grace_s: float = 3600.0
    # DEVELOPMENT ONLY: let outbound fetches reach private/loopback addresses and plain http
    # (the local test PDS). Off in production: SSRF guard.
    outbound_allow_private: bool = False
    playability_check_interval_s: float = 300.0
    playability_check_sample: int = 50

    # Comma-separated labelers to subscribe to (`com.atproto.label.subscribeLabels`): DIDs (the
    # endpoint comes from their `#atproto_labeler` service) or host URLs. Empty: no labels.
    labelers: str = "https://moderation.plyr.fm"

    @property
    def labeler_list(self) -> list[str]:
        return [x.strip() for x in self.labelers.split(",") if x.strip()]

    @property
    def relays(self) -> list[str]:
        return [h.strip() for h in self.firehose_relays.split(",") if h.strip()]

    @property
    def hosts(self) -> list[str]:
        return [h.strip() for h in self.firehose_hosts.split(",") if h.strip()]

    @property
    def jetstreams(self) -> list[str]:
        return [u.strip() for u in self.jetstream_urls.split(",") if u.strip()]

    # --- backfill and resync (issue #6) ---
    # Repair desynchronized repos (chain break, #sync, first seen mid-chain) by getRepo + diff.
    resync_enabled: bool = True
    # Live commits of a repo being resynced: logged at once and held for the chain check (false), or held
    # back from the log until the snapshot is applied, then replayed (true, indigo's FlushBufferedOps).
    resync_buffer_live: bool = False
    # Discovery on start: listReposByCollection against this relay, and/or listRepos against these PDS hosts.
    backfill_relay_url: str | None = None
    backfill_pds_hosts: str = ""
    backfill_concurrency: int = 8  # repos in flight
    backfill_per_host: int = 4  # concurrent requests per PDS
    backfill_rate_per_host: float = 10.0  # requests/s per PDS (Bluesky's PDSes allow ~10/s)
    backfill_timeout_s: float = 120.0
    backfill_attempts: int = 3  # HTTP attempts per request (429, 5xx, timeouts)
    backfill_job_attempts: int = 5  # failed jobs are retried until this many failures
    backfill_retry_interval_s: float = 300.0

    @property
    def backfill_pds(self) -> list[str]:
        return [h.strip() for h in self.backfill_pds_hosts.split(",") if h.strip()]
