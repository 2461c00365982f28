"""Write-side settings (environment only)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from core.blobstore.settings import BlobSettings
from core.settings_checks import HttpUrl, OptionalHttpUrl, OptionalPort, check_labelers, split_list, url_list

DAY_S = 86400.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY_S, "w": 7 * DAY_S}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhdw])")


def parse_retention(value: Any) -> float | None:
    """LOG_RETENTION: empty or `all` keeps everything; else a duration like `72h`, `30d`, `2w` (≥ 1 hour)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "all")):
        return None
    match = _DURATION.fullmatch(str(value).strip().lower())
    if match is None:
        raise ValueError("must be `all` or a duration: a number and a unit s, m, h, d or w (e.g. 72h, 30d)")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 3600 <= seconds <= 100 * 365 * DAY_S:
        raise ValueError("must be at least 1h and at most 100 years (or `all`)")
    return seconds


class IngesterSettings(BlobSettings):
    # Comma-separated: a relay (wss://bsky.network) or PDS hosts followed directly.
    firehose_hosts: Annotated[str, AfterValidator(url_list("wss", "ws", bare_host=True))] = "wss://bsky.network"
    # Which followed hosts are relays (trusted as relays); every other host is a PDS, whose #account,
    # #identity and #sync count only for the DIDs it hosts. Configured, never detected (README "What we
    # trust from whom").
    firehose_relays: str = "bsky.network,relay1.us-east.bsky.network,relay1.us-west.bsky.network"
    # No rev (commit, #sync, getRepo snapshot) further ahead of our clock than this is accepted.
    rev_future_skew_s: float = Field(default=300.0, ge=0, le=30 * 86400.0)
    # Identity resolution off the hot path: total deadline of one DID's resolution (document + handle),
    # concurrent resolutions per host (per did:web host, per PLC), parked bytes per repo and in all.
    identity_deadline_s: float = Field(default=5.0, gt=0, le=600)
    identity_per_host: int = Field(default=8, ge=1, le=1024)
    park_max_repo_bytes: int = Field(default=1 << 20, ge=1024, le=1 << 34)
    park_max_bytes: int = Field(default=64 << 20, ge=1024, le=1 << 40)
    # Comma-separated Jetstream hosts (e.g. wss://jetstream.us-east.bsky.network); empty: none. Their events
    # are unverified: set PROJECT_UNVERIFIED to serve them (FIREHOSE_HOSTS="" for a Jetstream-only ingester).
    jetstream_urls: Annotated[str, AfterValidator(url_list("wss", "ws", bare_host=True))] = ""
    jetstream_version: Literal["v1", "v2"] = "v2"  # v2 subscribeEvents (seq cursor) or v1 /subscribe (time_us)
    jetstream_compress: bool = True  # v2: dict-zstd frames, when the host serves its dictionary
    # Where a source with no committed cursor starts (0: all the host retains; unset: the live tip).
    firehose_start_cursor: int | None = Field(default=None, ge=0, le=2**63 - 1)
    jetstream_start_cursor: int | None = Field(default=None, ge=0, le=2**63 - 1)  # a v2 seq, or a v1 time_us
    plc_url: HttpUrl = "https://plc.directory"
    # Project events we could not verify (DID unresolvable). Off: only verified data is served.
    project_unverified: bool = False
    ingest_batch_max: int = Field(default=2000, ge=1, le=20_000)  # ≤ the source queue
    # Bytes a source may hold received but not yet committed (its queue + the batch being applied); past
    # it the socket is not read (TCP backpressure). One frame bigger than this is admitted alone.
    ingest_queue_bytes: int = Field(default=64 * 1024 * 1024, gt=0, le=1 << 40)
    projector_batch: int = Field(default=5000, ge=1, le=1_000_000)
    # The log's growth (README "Log growth and retention"): seq span of each new record_event partition,
    # and how long the log keeps events (older partitions are dropped once projected; None = forever).
    log_partition_size: int = Field(default=10_000_000, ge=1000, le=1 << 50)
    log_retention: Annotated[float | None, BeforeValidator(parse_retention)] = None
    did_cache_ttl_s: float = Field(default=3600.0, gt=0, le=30 * DAY_S)
    # `appview ingest` alone has no API: serve /metrics on this port when set (`run` serves it on the API).
    metrics_port: OptionalPort = None

    # Supervision (ingester/supervisor.py) and the heartbeat /health and /ready read (ingester/heartbeat.py).
    supervisor_backoff_cap_s: float = Field(default=60.0, gt=0, le=3600)  # longest wait before a restart
    supervisor_healthy_after_s: float = Field(default=60.0, gt=0, le=DAY_S)  # a run this long resets the backoff
    health_heartbeat_s: float = Field(default=5.0, gt=0, le=3600)  # component_health upsert period
    # Leadership (ingester/leadership.py): a leader renews its lease every third of INGEST_LEASE_S; a standby
    # checks every INGEST_STANDBY_POLL_S. A dead leader's session frees its lock at once (takeover within a
    # poll); a paused or cut-off one is taken over once its lease ran out: within lease + poll.
    ingest_lease_s: float = Field(default=6.0, ge=1, le=600)
    ingest_standby_poll_s: float = Field(default=1.0, ge=0.05, le=60)

    # Blob mirror (S3_* / store settings are in BlobSettings).
    blob_mirror: bool = True
    blob_fetch_concurrency: int = Field(default=8, ge=1, le=1024)
    blob_per_pds_concurrency: int = Field(default=2, ge=1, le=1024)
    blob_fetch_timeout_s: float = Field(default=300.0, gt=0, le=DAY_S)
    blob_scan_interval_s: float = Field(default=2.0, gt=0, le=DAY_S)
    # An unreferenced blob stays this long before it leaves the store (a quick re-reference keeps it).
    blob_release_grace_s: float = Field(default=3600.0, ge=0, le=365 * DAY_S)
    # DEVELOPMENT ONLY: let outbound fetches reach private/loopback addresses and plain http
    # (the local test PDS). Off in production: SSRF guard.
    outbound_allow_private: bool = False
    playability_check_interval_s: float = Field(default=300.0, gt=0, le=7 * DAY_S)
    playability_check_sample: int = Field(default=50, ge=1, le=100_000)

    # Comma-separated labelers to subscribe to (`com.atproto.label.subscribeLabels`): DIDs (the
    # endpoint comes from their `#atproto_labeler` service) or host URLs. Empty: no labels.
    labelers: Annotated[str, AfterValidator(check_labelers)] = "https://moderation.plyr.fm"

    @property
    def labeler_list(self) -> list[str]:
        return _unique(split_list(self.labelers))

    @property
    def relays(self) -> list[str]:
        return [h.strip() for h in self.firehose_relays.split(",") if h.strip()]

    @property
    def hosts(self) -> list[str]:
        return _unique(split_list(self.firehose_hosts))

    @property
    def jetstreams(self) -> list[str]:
        return _unique(split_list(self.jetstream_urls))

    # --- backfill and resync (issue #6) ---
    # Repair desynchronized repos (chain break, #sync, first seen mid-chain) by getRepo + diff.
    resync_enabled: bool = True
    # Live commits of a repo being resynced: logged at once and held for the chain check (false), or held
    # back from the log until the snapshot is applied, then replayed (true, indigo's FlushBufferedOps).
    resync_buffer_live: bool = False
    # Discovery on start: listReposByCollection against this relay, and/or listRepos against these PDS hosts.
    backfill_relay_url: OptionalHttpUrl = None
    backfill_pds_hosts: Annotated[str, AfterValidator(url_list("https", "http"))] = ""
    backfill_concurrency: int = Field(default=8, ge=1, le=1024)  # repos in flight
    backfill_per_host: int = Field(default=4, ge=1, le=1024)  # concurrent requests per PDS
    # Requests/s per PDS (Bluesky's PDSes allow ~10/s).
    backfill_rate_per_host: float = Field(default=10.0, gt=0, le=100_000)
    backfill_timeout_s: float = Field(default=120.0, gt=0, le=DAY_S)
    backfill_attempts: int = Field(default=3, ge=1, le=100)  # HTTP attempts per request (429, 5xx, timeouts)
    backfill_job_attempts: int = Field(default=5, ge=1, le=10_000)  # failed jobs are retried until this many failures
    backfill_retry_interval_s: float = Field(default=300.0, gt=0, le=7 * DAY_S)
    # getRepo bodies are cut off past this while streaming (the CAR is then held in memory while it is
    # walked, so BACKFILL_CONCURRENCY × this bounds the backfill's memory).
    getrepo_max_bytes: int = Field(default=256 << 20, gt=0, le=1 << 40)

    @property
    def backfill_pds(self) -> list[str]:
        return _unique(split_list(self.backfill_pds_hosts))


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
