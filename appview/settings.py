"""Read-side settings (environment only)."""

from __future__ import annotations

from core.settings import CoreSettings


class AppviewSettings(CoreSettings):
    host: str = "127.0.0.1"
    port: int = 8080
    db_pool_max: int = 10
    # Anonymous reads are cached until the projections move (or this many seconds pass).
    response_cache: bool = True
    response_cache_ttl_s: float = 60.0
