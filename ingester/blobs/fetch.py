"""The mirror's HTTP: stream a PDS blob to a spool file while hashing; probe audio URLs.

Every request goes through the outbound guard (``core.outbound``): public https only unless
OUTBOUND_ALLOW_PRIVATE, checked redirects, one deadline per request, bytes counted while streaming.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import anyio
import orjson

from core.blobstore.cid import raw_cid
from core.outbound import Outbound, OutboundError, OutboundResponse, RefusedAddress

# PDS error names that mean the blob is not there (as opposed to "try later").
GONE_ERRORS = {"BlobNotFound", "RepoNotFound", "NotFound"}
_XRPC_ERROR = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_SMALL = 1 << 20  # a probe or an error body


@dataclass(frozen=True)
class Fetched:
    ok: bool
    size: int = 0
    reason: str | None = None  # why not ok
    gone: bool = False  # the PDS says it doesn't have it
    retry: bool = False  # transient: retry this PDS later
    mime: str | None = None


def get_blob_url(pds: str, did: str, cid: str) -> str:
    return f"{pds.rstrip('/')}/xrpc/com.atproto.sync.getBlob?{urlencode({'did': did, 'cid': cid})}"


class GuardedHttp:
    def __init__(self, *, allow_private: bool, timeout_s: float, limit: int = 32, limit_per_host: int = 4) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s  # the whole request, body included
        self.out = Outbound(allow_private=allow_private, per_host=limit_per_host, max_connections=limit,
                            user_agent="plyr-appview-mirror")

    async def aclose(self) -> None:
        await self.out.aclose()

    @asynccontextmanager
    async def request(self, method: str, url: str, headers: Mapping[str, str] | None = None,
                      max_bytes: int = _SMALL) -> AsyncIterator[OutboundResponse]:
        """One guarded request (redirects checked hop by hop). Raises OutboundError."""
        async with self.out.stream(method, url, headers=headers, timeout_s=self.timeout_s,
                                   max_bytes=max_bytes) as resp:
            yield resp

    async def fetch_blob(self, pds: str, did: str, cid: str, digest: bytes, dest: Path,
                         max_bytes: int) -> Fetched:
        """Stream getBlob into `dest`; ok only when the bytes hash to `digest` and fit `max_bytes`."""
        try:
            return await self._fetch_blob(get_blob_url(pds, did, cid), digest, dest, max_bytes)
        except OutboundError as e:
            await anyio.Path(dest).unlink(missing_ok=True)
            return _network_failure(e)
        except BaseException:
            await anyio.Path(dest).unlink(missing_ok=True)
            raise

    async def _fetch_blob(self, url: str, digest: bytes, dest: Path, max_bytes: int) -> Fetched:
        async with self.request("GET", url, max_bytes=max_bytes) as resp:
            if resp.status != 200:
                return await _http_failure(resp)
            h = hashlib.sha256()
            size = 0
            async with await anyio.open_file(dest, "wb") as f:
                async for chunk in resp.iter_bytes():  # raises too_large past max_bytes
                    size += len(chunk)
                    h.update(chunk)
                    await f.write(chunk)
            mime = resp.headers.get("content-type")
        if h.digest() != digest:
            await anyio.Path(dest).unlink(missing_ok=True)
            return Fetched(False, reason=f"cid_mismatch:{raw_cid(h.digest())}")
        return Fetched(True, size=size, mime=mime)

    async def probe(self, url: str, method: str = "HEAD") -> int | None:
        """Status code of `url` (None on a network error); raises RefusedAddress when not allowed."""
        try:
            async with self.request(method, url) as resp:
                return resp.status
        except RefusedAddress:
            raise
        except OutboundError:
            return None


def _network_failure(e: OutboundError) -> Fetched:
    if e.reason == "refused":
        return Fetched(False, reason="refused_address")
    if e.reason == "too_large":
        return Fetched(False, reason="too_large")
    return Fetched(False, reason=f"network:{e.reason}", retry=True)


async def _http_failure(resp: OutboundResponse) -> Fetched:
    error = ""
    if resp.status == 400:
        try:
            body = orjson.loads(await resp.read_prefix(65536))
            name = body.get("error") if isinstance(body, dict) else None
            error = name if isinstance(name, str) and _XRPC_ERROR.fullmatch(name) else ""
        except (orjson.JSONDecodeError, OutboundError):
            error = ""
    reason = f"http_{resp.status}" + (f":{error}" if error else "")
    if resp.status in (404, 410) or error in GONE_ERRORS:
        return Fetched(False, reason=reason, gone=True)
    if resp.status == 429 or resp.status >= 500:
        return Fetched(False, reason=reason, retry=True)
    return Fetched(False, reason=reason)


async def blob_status(http: GuardedHttp, pds: str, did: str, cid: str) -> Fetched:
    """Does the PDS still serve this blob? Reads one byte at most."""
    try:
        async with http.request("GET", get_blob_url(pds, did, cid), headers={"range": "bytes=0-0"}) as resp:
            if resp.status in (200, 206):
                return Fetched(True)
            return await _http_failure(resp)
    except OutboundError as e:
        return _network_failure(e)
