"""Read-side settings (environment only)."""

from __future__ import annotations

from core.blobstore.settings import BlobSettings


class AppviewSettings(BlobSettings):
    host: str = "127.0.0.1"
    port: int = 8080
    db_pool_max: int = 10
    # Anonymous reads are cached until the projections move (or this many seconds pass).
    response_cache: bool = True
    response_cache_ttl_s: float = 60.0
    response_cache_stale_s: float = 1.0  # how long an entry may outlive a projection change
