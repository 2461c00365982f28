"""DID resolution (did:plc, did:web) with a bounded TTL cache and in-flight de-duplication.

What we take from a DID document (spec/did; indigo ``atproto/identity``): the handle claimed in
``alsoKnownAs`` (not verified here: bi-directional handle checks are a separate concern), the
``#atproto_pds`` service endpoint and the ``#atproto`` signing key in Multikey *or* legacy form.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from core.crypto import LEGACY_TYPES, PublicKey, parse_legacy_key, parse_multikey
from core.outbound import Outbound, OutboundError

_PLC_RE = re.compile(r"^did:plc:[a-z2-7]{24}$")
_HANDLE_RE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
_HOST_RE = re.compile(r"^[a-zA-Z0-9.-]+$")
# Development allowance (OUTBOUND_ALLOW_PRIVATE only): did:web for these hosts may carry a percent-encoded
# port and is fetched over plain http, so tests can serve DID docs from a local server. Otherwise https, no port.
_DEV_HOSTS = frozenset({"localhost", "127.0.0.1"})
_MAX_DOC_BYTES = 256 * 1024  # real docs are ~1 KB; don't let a hostile did:web host make us parse megabytes
_MAX_SMALL_BYTES = 64 * 1024  # resolveHandle answers

# `refused`: the outbound guard would not connect (private address, http, bad redirect).
ResolveReason = Literal["not_found", "tombstoned", "http_error", "timeout", "bad_doc", "unsupported", "refused"]
# Errors that will not fix themselves within seconds, so are worth remembering (indigo caches errors 2 min).
_STICKY_REASONS = frozenset({"not_found", "tombstoned", "bad_doc", "unsupported", "refused"})


class ResolveError(Exception):
    def __init__(self, did: str, reason: ResolveReason, detail: str = "") -> None:
        self.did, self.reason, self.detail = did, reason, detail
        super().__init__(f"{did}: {reason}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class DidInfo:
    did: str
    handle: str | None
    pds: str | None
    signing_key: PublicKey | None
    doc: dict[str, Any] = field(repr=False, hash=False)  # raw doc, for callers needing more fields


def id_matches(entry_id: object, did: str, frag: str) -> bool:
    # ids may be relative ("#atproto") or absolute ("did:plc:…#atproto")
    return entry_id == frag or entry_id == did + frag


def _entries(doc: dict[str, Any], field: str) -> list[dict[str, Any]]:
    value = doc.get(field)
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def verification_key(vm: dict[str, Any]) -> PublicKey | None:
    """The public key of one DID-document verification method (Multikey or legacy), or None."""
    mb = vm.get("publicKeyMultibase")
    if not isinstance(mb, str):
        return None
    try:
        if vm.get("type") == "Multikey":
            return parse_multikey(mb)
        if vm.get("type") in LEGACY_TYPES:
            return parse_legacy_key(vm["type"], mb)
    except ValueError:
        # A malformed key leaves the identity usable for handle/PDS; the verifier reports no_key.
        return None
    return None


def parse_did_doc(did: str, doc: dict[str, Any]) -> DidInfo:
    """Extract handle / PDS / signing key. Raises ValueError if ``doc`` is not a doc for ``did``."""
    if not isinstance(doc, dict):
        raise ValueError("DID document is not a JSON object")
    if doc.get("id") != did:
        raise ValueError(f"DID document id {doc.get('id')!r:.80} does not match {did}")

    handle = None
    aka = doc.get("alsoKnownAs")
    for entry in aka if isinstance(aka, list) else []:
        if isinstance(entry, str) and entry.startswith("at://"):
            candidate = entry[5:]
            if len(candidate) <= 253 and _HANDLE_RE.match(candidate):
                handle = candidate.lower()  # handles are case-insensitive; lowercase is canonical
                break

    pds = None
    for svc in _entries(doc, "service"):
        if id_matches(svc.get("id"), did, "#atproto_pds") and svc.get("type") == "AtprotoPersonalDataServer":
            ep = svc.get("serviceEndpoint")
            # isascii/isprintable: no U+0000, control chars or lone surrogates (the doc is untrusted
            # JSON, and such a string cannot be stored in Postgres: it would fail the whole batch).
            if isinstance(ep, str) and ep.startswith(("https://", "http://")) and ep.isascii() and ep.isprintable():
                pds = ep
            break

    key = None
    for vm in _entries(doc, "verificationMethod"):
        if id_matches(vm.get("id"), did, "#atproto"):
            key = verification_key(vm)
            break

    return DidInfo(did=did, handle=handle, pds=pds, signing_key=key, doc=doc)


def did_web_url(did: str, *, allow_private: bool = False) -> str:
    """did:web:host → https://host/.well-known/did.json; with ``allow_private`` (development only)
    localhost/127.0.0.1 with a port over http."""
    ident = did[len("did:web:") :]
    if not ident or ":" in ident:  # a ':' would be a path; atproto only allows bare hostnames
        raise ResolveError(did, "unsupported", "did:web must be a bare hostname")
    host = unquote(ident)
    name, _, port = host.partition(":")
    if name.lower() in _DEV_HOSTS:
        if not allow_private:
            raise ResolveError(did, "refused", "did:web on a loopback host")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ResolveError(did, "unsupported", "bad port")
        return f"http://{host}/.well-known/did.json"
    if port or not _HOST_RE.match(host) or "." not in host:
        raise ResolveError(did, "unsupported", "did:web host must be a plain DNS name without port")
    return f"https://{host}/.well-known/did.json"


class IdentityResolver:
    """Resolves DIDs to :class:`DidInfo`; safe to share across tasks of one event loop.

    Every fetch goes through the outbound guard: ``client`` (shared, not closed here) or one of our own with
    ``allow_private`` (OUTBOUND_ALLOW_PRIVATE). ``timeout_s`` is a total deadline per document."""

    def __init__(
        self,
        plc_url: str = "https://plc.directory",
        ttl_s: float = 3600,
        timeout_s: float = 5,
        client: Outbound | None = None,
        *,
        allow_private: bool = False,
        max_entries: int = 100_000,
        error_ttl_s: float = 120,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plc_url = plc_url.rstrip("/")
        self.ttl_s, self.error_ttl_s, self.max_entries = ttl_s, error_ttl_s, max_entries
        self._own_client = client is None
        self._client = client or Outbound(allow_private=allow_private)
        self._timeout = timeout_s
        self._clock = clock
        # did → (expires_at, DidInfo | ResolveError); OrderedDict order = recency, for LRU eviction.
        self._cache: OrderedDict[str, tuple[float, DidInfo | ResolveError]] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[DidInfo]] = {}
        self.hits = self.misses = self.fetches = self.joined = self.errors = 0

    # --- public API -------------------------------------------------------------------------------

    async def resolve(self, did: str, *, force: bool = False) -> DidInfo:
        """Return the (possibly cached) DidInfo; ``force`` skips the cache. Raises ResolveError."""
        if not force:
            entry = self._cache.get(did)
            if entry is not None and entry[0] > self._clock():
                self._cache.move_to_end(did)
                self.hits += 1
                if isinstance(entry[1], ResolveError):
                    raise entry[1]
                return entry[1]
        self.misses += 1
        task = self._inflight.get(did)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch_and_store(did))
            self._inflight[did] = task
            task.add_done_callback(functools.partial(self._done, did))
        else:
            # Joining a fetch already under way is as fresh as starting one, even for force=True.
            self.joined += 1
        # shield: one caller being cancelled must not cancel the fetch the others are waiting for
        return await asyncio.shield(task)

    def peek(self, did: str) -> DidInfo | ResolveError | None:
        """The cached outcome for `did` without any network (None: not cached, or expired)."""
        entry = self._cache.get(did)
        return entry[1] if entry is not None and entry[0] > self._clock() else None

    def invalidate(self, did: str) -> None:
        self._cache.pop(did, None)

    def stats(self) -> dict[str, int]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "fetches": self.fetches,
            "joined": self.joined,
            "errors": self.errors,
            "size": len(self._cache),
        }

    @property
    def outbound(self) -> Outbound:
        """The guarded client this resolver fetches with (handles and labelers share it)."""
        return self._client

    @property
    def allow_private(self) -> bool:
        return self._client.allow_private

    async def resolve_handle_via_pds(self, pds_url: str, handle: str) -> str | None:
        """Ask a PDS for ``com.atproto.identity.resolveHandle`` (for ``.test`` handles on the local net,
        which have no DNS/HTTPS). Returns None if the PDS says it doesn't know the handle; raises
        ResolveError on transport failures. The result is *not* bi-directionally verified."""
        url = f"{pds_url.rstrip('/')}/xrpc/com.atproto.identity.resolveHandle"
        try:
            resp = await self._client.get(url, params={"handle": handle}, timeout_s=self._timeout,
                                          max_bytes=_MAX_SMALL_BYTES)
        except OutboundError as e:
            raise _resolve_error(handle, e) from None
        if 400 <= resp.status < 500:
            return None
        if resp.status != 200:
            raise ResolveError(handle, "http_error", f"HTTP {resp.status}")
        try:
            body = resp.json()
            did = body.get("did") if isinstance(body, dict) else None
        except OutboundError:
            return None
        return did if isinstance(did, str) and did.startswith("did:") else None

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def __aenter__(self) -> IdentityResolver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- internals --------------------------------------------------------------------------------

    def _done(self, did: str, task: asyncio.Task[DidInfo]) -> None:
        if self._inflight.get(did) is task:
            del self._inflight[did]
        if not task.cancelled():
            task.exception()  # mark retrieved: if every waiter was cancelled nobody else will

    async def _fetch_and_store(self, did: str) -> DidInfo:
        try:
            info = await self._fetch(did)
        except ResolveError as e:
            self.errors += 1
            if e.reason in _STICKY_REASONS and self.error_ttl_s > 0:
                self._store(did, e, self.error_ttl_s)
            else:
                self._cache.pop(did, None)  # transient: let the next caller retry immediately
            raise
        self._store(did, info, self.ttl_s)
        return info

    def _store(self, did: str, value: DidInfo | ResolveError, ttl: float) -> None:
        self._cache[did] = (self._clock() + ttl, value)
        self._cache.move_to_end(did)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    def _url_for(self, did: str) -> str:
        if did.startswith("did:plc:"):
            if not _PLC_RE.match(did):
                raise ResolveError(did, "unsupported", "malformed did:plc")
            return f"{self.plc_url}/{did}"
        if did.startswith("did:web:"):
            return did_web_url(did, allow_private=self.allow_private)
        raise ResolveError(did, "unsupported", "only did:plc and did:web are supported")

    async def _fetch(self, did: str) -> DidInfo:
        url = self._url_for(did)
        self.fetches += 1
        try:
            resp = await self._client.get(url, timeout_s=self._timeout, max_bytes=_MAX_DOC_BYTES)
        except OutboundError as e:
            raise _resolve_error(did, e) from None
        if resp.status == 404:
            raise ResolveError(did, "not_found", f"HTTP 404 from {_host(url)}")
        if resp.status == 410:  # PLC answers 410 Gone for tombstoned (deleted) DIDs
            raise ResolveError(did, "tombstoned", _host(url))
        if resp.status != 200:
            raise ResolveError(did, "http_error", f"HTTP {resp.status} from {_host(url)}")
        try:
            return parse_did_doc(did, resp.json())
        except OutboundError:
            raise ResolveError(did, "bad_doc", "not JSON") from None
        except ValueError as e:
            raise ResolveError(did, "bad_doc", str(e)[:200]) from None


def _host(url: str) -> str:
    return urlsplit(url).netloc[:100]


def _resolve_error(subject: str, e: OutboundError) -> ResolveError:
    """An outbound failure as a resolve reason; the detail is the guard's category, never the peer's text."""
    reason: ResolveReason
    if e.reason == "refused":
        reason = "refused"
    elif e.reason == "timeout":
        reason = "timeout"
    elif e.reason == "too_large":
        reason = "bad_doc"
    else:
        reason = "http_error"
    return ResolveError(subject, reason, e.reason)
