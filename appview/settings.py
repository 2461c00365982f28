"""Read-side settings (environment only)."""

from __future__ import annotations

from core.blobstore.settings import BlobSettings


class AppviewSettings(BlobSettings):
    host: str = "127.0.0.1"
    port: int = 8080
    db_pool_max: int = 10
