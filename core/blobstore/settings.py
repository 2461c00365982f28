"""Blob-store and playback settings both processes need (the mirror writes, /audio reads).

The store is the local filesystem under `APPVIEW_DATA_DIR/blobs` unless `S3_BUCKET` is set.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from core.settings import CoreSettings

# fm.plyr.track#audioBlob maxSize (lexicons/track.json): 100 MiB.
LEXICON_AUDIO_MAX_BYTES = 104_857_600
DEFAULT_AUDIO_HOSTS = "audio.plyr.fm,api.plyr.fm,.r2.dev"


class BlobSettings(CoreSettings):
    s3_bucket: str | None = Field(default=None, description="set = store blobs in this S3 bucket")
    s3_endpoint_url: str | None = None  # S3-compatible endpoint (R2, MinIO, moto); unset = AWS
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_prefix: str = "blobs/"
    # Public base URL of the bucket (CDN / custom domain): /audio redirects there instead of presigning.
    s3_public_base_url: str | None = None
    s3_presign_expiry_s: int = 3600
    blob_max_bytes: int = LEXICON_AUDIO_MAX_BYTES
    # Hosts whose https audioUrls /audio may redirect to; ".example.com" matches subdomains.
    audio_url_allowed_hosts: str = DEFAULT_AUDIO_HOSTS

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def allowed_audio_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in self.audio_url_allowed_hosts.split(",") if h.strip())
