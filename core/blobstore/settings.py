"""Blob-store and playback settings both processes need (the mirror writes, /audio reads).

The store is the local filesystem under `APPVIEW_DATA_DIR/blobs` unless `S3_BUCKET` is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from core.settings import SECRET, CoreSettings
from core.settings_checks import OptionalHttpUrl, blank_is_none, check_bucket, check_host_patterns, check_region

# fm.plyr.track#audioBlob maxSize (lexicons/track.json): 100 MiB.
LEXICON_AUDIO_MAX_BYTES = 104_857_600
DEFAULT_AUDIO_HOSTS = "audio.plyr.fm,api.plyr.fm,.r2.dev"


class BlobSettings(CoreSettings):
    s3_bucket: Annotated[str | None, BeforeValidator(blank_is_none), AfterValidator(check_bucket)] = Field(
        default=None, description="set = store blobs in this S3 bucket")
    s3_endpoint_url: OptionalHttpUrl = None  # S3-compatible endpoint (R2, MinIO, moto); unset = AWS
    s3_region: Annotated[str, AfterValidator(check_region)] = "us-east-1"
    s3_access_key_id: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        default=None, json_schema_extra=SECRET)
    s3_secret_access_key: Annotated[str | None, BeforeValidator(blank_is_none)] = Field(
        default=None, json_schema_extra=SECRET)
    s3_prefix: str = Field(default="blobs/", max_length=512, pattern=r"^[^\x00-\x1f]*$")
    # Public base URL of the bucket (CDN / custom domain): /audio redirects there instead of presigning.
    s3_public_base_url: OptionalHttpUrl = None
    s3_presign_expiry_s: int = Field(default=3600, ge=1, le=604800)  # S3's limit: 7 days
    blob_max_bytes: int = Field(default=LEXICON_AUDIO_MAX_BYTES, ge=1, le=LEXICON_AUDIO_MAX_BYTES)
    # Hosts whose https audioUrls /audio may redirect to; ".example.com" matches subdomains.
    audio_url_allowed_hosts: Annotated[str, AfterValidator(check_host_patterns)] = DEFAULT_AUDIO_HOSTS

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def allowed_audio_hosts(self) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in self.audio_url_allowed_hosts.split(",") if h.strip())
