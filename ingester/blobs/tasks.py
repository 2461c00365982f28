"""Wiring of the blob mirror and the playability checker into the ingester process, as supervised
components that share the process's resolver and store."""

from __future__ import annotations

from core.blobstore import BlobStore
from core.identity import IdentityResolver
from ingester.blobs.checker import PlayabilityChecker
from ingester.blobs.fetch import GuardedHttp
from ingester.blobs.mirror import BlobMirror
from ingester.settings import IngesterSettings
from ingester.supervisor import Component


class BlobTasks:
    def __init__(self, settings: IngesterSettings, url: str, store: BlobStore, resolver: IdentityResolver) -> None:
        self.mirror = BlobMirror(settings, url, store, resolver)
        self.checker = PlayabilityChecker(settings, url, store, GuardedHttp(
            allow_private=settings.outbound_allow_private, timeout_s=30.0, limit=8, limit_per_host=2))

    def components(self) -> list[Component]:
        return [Component("blob-mirror", "worker", self.mirror.run),
                Component("playability-checker", "worker", self.checker.run)]

    async def aclose(self) -> None:
        """After the components have stopped: release the HTTP clients (the resolver is the caller's)."""
        await self.mirror.aclose()
        await self.checker.http.aclose()
