"""Responses of /audio: a local blob with Range support, and HEAD twins of any response."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from appview.playback.ranges import Partial, Unsatisfiable, Whole, if_range_allows, parse_range

CHUNK = 256 * 1024
IMMUTABLE = "public, max-age=31536000, immutable"


class BlobFileResponse(Response):
    """A content-addressed file: strong ETag = the CID, immutable caching, single byte ranges."""

    def __init__(self, path: Path, size: int, cid: str, media_type: str, range_header: str | None,
                 if_range: str | None, head: bool) -> None:
        self.path, self.size, self.head = path, size, head
        self.background: BackgroundTask | None = None
        etag = f'"{cid}"'
        rng = parse_range(range_header, size) if if_range_allows(if_range, etag) else Whole()
        headers = {"accept-ranges": "bytes", "etag": etag, "cache-control": IMMUTABLE,
                   "x-content-type-options": "nosniff"}
        self.start, self.length = 0, size
        if isinstance(rng, Unsatisfiable):
            self.status_code, self.length = 416, 0
            headers["content-range"] = f"bytes */{size}"
        elif isinstance(rng, Partial):
            self.status_code, self.start, self.length = 206, rng.start, rng.length
            headers["content-range"] = f"bytes {rng.start}-{rng.end}/{size}"
        else:
            self.status_code = 200
        headers["content-length"] = str(self.length)
        headers["content-type"] = media_type
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if self.head or self.length == 0:
            await send({"type": "http.response.body", "body": b""})
            return
        fd = await anyio.to_thread.run_sync(os.open, self.path, os.O_RDONLY)
        try:
            offset, remaining = self.start, self.length
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(os.pread, fd, min(CHUNK, remaining), offset)
                if not chunk:  # file shrank under us (it never should: blobs are immutable)
                    break
                offset += len(chunk)
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
            if remaining > 0:
                await send({"type": "http.response.body", "body": b""})
        finally:
            os.close(fd)


class HeadOf(Response):
    """The same status and headers as `inner`, without a body (HEAD must equal GET but the body)."""

    def __init__(self, inner: Response) -> None:
        self.inner = inner
        self.status_code = inner.status_code
        self.background = None
        self.raw_headers = inner.raw_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def headless(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.inner(scope, receive, headless)
