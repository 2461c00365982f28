"""Guarded outbound HTTP: stream a PDS blob to a spool file while hashing; probe audio URLs."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urljoin

import aiohttp
import anyio
import orjson

from core.blobstore.cid import raw_cid
from ingester.blobs.guard import GuardedResolver, RefusedAddress, check_redirect, check_url, is_refusal

MAX_REDIRECTS = 3
CHUNK = 256 * 1024
# PDS error names that mean the blob is not there (as opposed to "try later").
GONE_ERRORS = {"BlobNotFound", "RepoNotFound", "NotFound"}


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
    def __init__(self, *, allow_private: bool, timeout_s: float, connect_timeout_s: float = 10.0,
                 limit: int = 32, limit_per_host: int = 4) -> None:
        self.allow_private = allow_private
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=connect_timeout_s, sock_read=30.0)
        self._limits = (limit, limit_per_host)
        self._session: aiohttp.ClientSession | None = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allow_private), limit=self._limits[0],
                                             limit_per_host=self._limits[1], ttl_dns_cache=60)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout, trust_env=False,
                                                  headers={"user-agent": "plyr-appview-mirror"},
                                                  auto_decompress=False)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    @asynccontextmanager
    async def request(self, method: str, url: str, headers: dict[str, str] | None = None
                      ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request, following at most MAX_REDIRECTS same-scheme redirects, each hop checked."""
        scheme = check_url(url, allow_private=self.allow_private)
        for _ in range(MAX_REDIRECTS + 1):
            resp = await self._sess().request(method, url, headers=headers, allow_redirects=False)
            if resp.status in (301, 302, 303, 307, 308) and "location" in resp.headers:
                nxt = urljoin(url, resp.headers["location"])
                resp.release()
                check_redirect(scheme, nxt, allow_private=self.allow_private)
                url = nxt
                continue
            try:
                yield resp
            finally:
                resp.release()
            return
        raise RefusedAddress("too many redirects")

    async def fetch_blob(self, pds: str, did: str, cid: str, digest: bytes, dest: Path,
                         max_bytes: int) -> Fetched:
        """Stream getBlob into `dest`; ok only when the bytes hash to `digest` and fit `max_bytes`."""
        try:
            return await self._fetch_blob(get_blob_url(pds, did, cid), digest, dest, max_bytes)
        except (aiohttp.ClientError, OSError, TimeoutError, RefusedAddress) as e:
            await anyio.Path(dest).unlink(missing_ok=True)
            if is_refusal(e):
                return Fetched(False, reason="refused_address")
            return Fetched(False, reason=f"network:{type(e).__name__}", retry=True)
        except BaseException:
            await anyio.Path(dest).unlink(missing_ok=True)
            raise

    async def _fetch_blob(self, url: str, digest: bytes, dest: Path, max_bytes: int) -> Fetched:
        async with self.request("GET", url) as resp:
            if resp.status != 200:
                return await _http_failure(resp)
            declared = resp.content_length
            if declared is not None and declared > max_bytes:
                return Fetched(False, reason="too_large")
            h = hashlib.sha256()
            size = 0
            async with await anyio.open_file(dest, "wb") as f:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        break
                    h.update(chunk)
                    await f.write(chunk)
            mime = resp.headers.get("content-type")
        if size > max_bytes:
            await anyio.Path(dest).unlink(missing_ok=True)
            return Fetched(False, reason="too_large")
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
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            if is_refusal(e):
                raise RefusedAddress(str(e)) from e
            return None


async def _http_failure(resp: aiohttp.ClientResponse) -> Fetched:
    error = ""
    if resp.status == 400:
        try:
            body = orjson.loads(await resp.content.read(65536))
            error = str(body.get("error", ""))[:64] if isinstance(body, dict) else ""
        except (ValueError, aiohttp.ClientError):
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
    except (aiohttp.ClientError, OSError, TimeoutError, RefusedAddress) as e:
        if is_refusal(e):
            return Fetched(False, reason="refused_address")
        return Fetched(False, reason=f"network:{type(e).__name__}", retry=True)
