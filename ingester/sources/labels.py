"""Stage ① for labels: a `com.atproto.label.subscribeLabels` client — bytes in, resumable cursor out.

A labeler emits a few labels a minute, so frames are handled one at a time, in order, and the
cursor advances only after the frame's labels are committed with it. On any disconnect we
reconnect from the committed cursor with jittered backoff; the log's digest key absorbs replays.

A source is configured either by DID (the `#atproto_labeler` service of its DID document names
the host, re-resolved at every connect) or by host URL. Either way the endpoint passes the outbound guard
first (wss to a public address; ws and private addresses only with OUTBOUND_ALLOW_PRIVATE) and the websocket
connects to the address the guard checked, the name still used for TLS and Host (no rebinding).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
import websockets
from websockets.asyncio.client import connect

from core.identity import IdentityResolver, ResolveError
from core.labels import labeler_endpoint
from core.outbound import OutboundError
from core.retry import Backoff
from ingester import metrics

log = structlog.get_logger(__name__)

MAX_FRAME_BYTES = 5 * 1024 * 1024
_PATH = "/xrpc/com.atproto.label.subscribeLabels"


@dataclass(frozen=True, slots=True)
class LabelResult:
    last_seq: int | None
    reset_cursor: bool = False  # FutureCursor: our cursor is not in this labeler's seq space


Handler = Callable[[bytes], Awaitable[LabelResult]]


def source_name(labeler: str) -> str:
    if labeler.startswith("did:"):
        return f"labels:{labeler}"
    parts = urlsplit(labeler if "://" in labeler else f"https://{labeler}")
    return f"labels:{parts.netloc}"


def subscribe_url(endpoint: str, cursor: int | None) -> str:
    base = endpoint if "://" in endpoint else f"https://{endpoint}"
    scheme, _, rest = base.partition("://")
    scheme = {"https": "wss", "http": "ws"}.get(scheme, scheme)
    url = f"{scheme}://{rest.rstrip('/')}"
    if not url.endswith(_PATH):
        url += _PATH
    return url if cursor is None else f"{url}?cursor={cursor}"


class LabelSource:
    def __init__(self, labeler: str, *, cursor: int | None, resolver: IdentityResolver,
                 backoff_max_s: float = 60.0) -> None:
        self.labeler = labeler
        self.did = labeler if labeler.startswith("did:") else None
        self.name = source_name(labeler)
        self.cursor = cursor
        self.resolver = resolver
        self.backoff_max_s = backoff_max_s
        self.connected = asyncio.Event()

    async def endpoint(self) -> str:
        if self.did is None:
            return self.labeler
        info = await self.resolver.resolve(self.did, force=True)
        endpoint = labeler_endpoint(self.did, info.doc)
        if endpoint is None:
            raise ResolveError(self.did, "bad_doc", "no #atproto_labeler service")
        return endpoint

    async def run(self, handler: Handler, stop: asyncio.Event) -> None:
        backoff = Backoff(base_s=1.0, cap_s=self.backoff_max_s)
        while not stop.is_set():
            try:
                url = subscribe_url(await self.endpoint(), self.cursor)
                _, port, addresses = await self.resolver.outbound.addresses(url)
                async with connect(url, host=addresses[0], port=port, proxy=None, max_size=MAX_FRAME_BYTES,
                                   open_timeout=10, ping_interval=20, ping_timeout=30, close_timeout=2) as ws:
                    log.info("labels.connected", source=self.name, cursor=self.cursor)
                    self.connected.set()
                    async for message in ws:
                        backoff.reset()
                        if isinstance(message, bytes):
                            await self._handle(handler, message, stop)
                        if stop.is_set():
                            return
            except OutboundError as e:
                log.warning("labels.endpoint_refused", source=self.name, reason=e.reason)
            except ResolveError as e:
                log.warning("labels.unresolved", source=self.name, reason=e.reason, detail=e.detail)
            except (OSError, websockets.WebSocketException, TimeoutError) as e:
                log.warning("labels.disconnected", source=self.name, error=type(e).__name__)
            finally:
                self.connected.clear()
            metrics.RECONNECTS.labels(self.name).inc()
            await backoff.wait(stop)

    async def _handle(self, handler: Handler, message: bytes, stop: asyncio.Event) -> None:
        backoff = Backoff(base_s=0.5, cap_s=30.0)
        while not stop.is_set():
            try:
                result = await handler(message)
                break
            except Exception:
                # Never drop a frame we could not commit (database down, …): retry it; the socket waits.
                log.exception("labels.frame_failed", source=self.name)
                await backoff.wait(stop)
        else:
            return
        if result.last_seq is not None:
            self.cursor = result.last_seq
            metrics.SOURCE_CURSOR.labels(self.name).set(result.last_seq)
        if result.reset_cursor:
            log.error("labels.cursor_reset", source=self.name, old_cursor=self.cursor)
            self.cursor = None
