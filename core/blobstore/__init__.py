"""Content-addressed blob stores shared by the mirror (writes) and /audio (reads)."""

from __future__ import annotations

from core.blobstore.base import BlobStore, LocalFile, Location, Redirect, safe_audio_mime
from core.blobstore.local import LocalStore
from core.blobstore.settings import BlobSettings


async def open_store(settings: BlobSettings) -> BlobStore:
    """S3 when `S3_BUCKET` is set, else the local filesystem under the data directory."""
    if settings.s3_bucket:
        from core.blobstore.s3 import S3Store

        return await S3Store.open(settings)
    return LocalStore(settings.blob_dir)


__all__ = [
    "BlobSettings", "BlobStore", "LocalFile", "LocalStore", "Location", "Redirect", "open_store", "safe_audio_mime",
]
