"""Local filesystem blob store: `<root>/<cid[-2:]>/<cid>`, written by atomic rename."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio

from core.blobstore.base import LocalFile, Location
from core.blobstore.cid import is_blob_cid


class LocalStore:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, cid: str) -> Path:
        # The CID is validated before it becomes a path: no traversal through a crafted id.
        if not is_blob_cid(cid):
            raise ValueError(f"not a blob CID: {cid[:80]!r}")
        return self.root / cid[-2:] / cid

    async def put_verified(self, cid: str, path: Path, size: int, mime: str) -> None:
        dest = self.path_for(cid)

        def move() -> None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            shutil.move(str(path), tmp)  # same filesystem: a rename
            os.replace(tmp, dest)

        await anyio.to_thread.run_sync(move)

    async def size_of(self, cid: str) -> int | None:
        try:
            return (await anyio.Path(self.path_for(cid)).stat()).st_size
        except (FileNotFoundError, ValueError):
            return None

    async def delete(self, cid: str) -> None:
        try:
            await anyio.Path(self.path_for(cid)).unlink()
        except FileNotFoundError:
            pass

    async def locate(self, cid: str, mime: str | None) -> Location | None:
        size = await self.size_of(cid)
        return None if size is None else LocalFile(self.path_for(cid), size)

    async def aclose(self) -> None:
        return None
