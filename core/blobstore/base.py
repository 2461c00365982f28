"""The blob-store contract: content-addressed by blob CID, written only with verified bytes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class LocalFile:
    """The blob is a file we serve ourselves (with Range)."""

    path: Path
    size: int


@dataclass(frozen=True)
class Redirect:
    """The blob is served by someone else (presigned or public S3 URL)."""

    url: str


Location = LocalFile | Redirect


class BlobStore(Protocol):
    kind: str  # "local" | "s3"

    async def put_verified(self, cid: str, path: Path, size: int, mime: str) -> None:
        """Store the file at `path`, whose bytes the caller has checked against `cid`.

        The store may move the file; the caller must not reuse `path`.
        """
        ...

    async def size_of(self, cid: str) -> int | None:
        """Size of the stored blob, None when absent."""
        ...

    async def delete(self, cid: str) -> None:
        """Remove the blob; absent is fine (deletes are retried)."""
        ...

    async def locate(self, cid: str, mime: str | None) -> Location | None:
        """Where a client can read the blob from, None when absent."""
        ...

    async def aclose(self) -> None: ...


_MIME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.+-")


def safe_audio_mime(mime: str | None) -> str:
    """A record's or PDS's mimeType is untrusted: serve only a plain `audio/<subtype>`."""
    if mime:
        kind, _, sub = mime.split(";", 1)[0].strip().lower().partition("/")
        if kind == "audio" and sub and len(sub) <= 64 and set(sub) <= _MIME_CHARS:
            return f"audio/{sub}"
    return "application/octet-stream"
