"""Wiring of the blob mirror and the playability checker into the ingester process."""

from __future__ import annotations

import asyncio

from core.blobstore import BlobStore
from core.identity import IdentityResolver
from ingester.blobs.checker import PlayabilityChecker
from ingester.blobs.fetch import GuardedHttp
from ingester.blobs.mirror import BlobMirror
from ingester.settings import IngesterSettings


def start_blob_tasks(settings: IngesterSettings, url: str, store: BlobStore, resolver: IdentityResolver,
                     stop: asyncio.Event) -> list[asyncio.Task[None]]:
    mirror = BlobMirror(settings, url, store, resolver)
    checker = PlayabilityChecker(settings, url, store, GuardedHttp(
        allow_private=settings.outbound_allow_private, timeout_s=30.0, limit=8, limit_per_host=2))

    async def check_forever() -> None:
        try:
            await checker.run(stop)
        finally:
            await checker.http.aclose()

    return [asyncio.create_task(mirror.run(stop), name="blob-mirror"),
            asyncio.create_task(check_forever(), name="playability-checker")]
