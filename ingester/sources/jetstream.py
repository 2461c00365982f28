"""Stage ①: a Jetstream client — v2 `subscribeEvents` or v1 `/subscribe` — JSON frames in, cursor out.

It is the firehose source's connect/commit/reconnect loop (bounded queue, reconnect only once every
received frame is committed, resume from the committed cursor) over another wire:
- v2: `/xrpc/network.bsky.jetstream.subscribeEvents?collections=fm.plyr.*&cursor=<seq>`, subprotocol
  `xrpc.v1.json`; the cursor is inclusive (the last committed event comes again and the log's dedup key
  absorbs it). Frames are dict-zstd compressed when the server's dictionary could be fetched
  (`network.bsky.jetstream.getZstdDictionary`), plain JSON text otherwise.
- v1: `/subscribe?wantedCollections=fm.plyr.*&cursor=<time_us>`, plain JSON text frames.
Both also ask for `app.bsky.actor.profile` (`COLLECTIONS`).
v1 and v2 cursors live in different spaces, so each version is its own source (`jetstream-v2:<host>`).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
import structlog
import zstandard
from websockets.typing import Subprotocol

from core.events import BSKY_PROFILE
from ingester import metrics
from ingester.sources.budget import DEFAULT_BUDGET
from ingester.sources.envelope import MAX_SEQ_JUMP, Reject, SeqGuard
from ingester.sources.firehose import MAX_FRAME_BYTES, FirehoseSource

log = structlog.get_logger(__name__)

V2_PATH = "/xrpc/network.bsky.jetstream.subscribeEvents"
V1_PATH = "/subscribe"
DICTIONARY_PATH = "/xrpc/network.bsky.jetstream.getZstdDictionary"
SUBPROTOCOL = Subprotocol("xrpc.v1.json")
# Every account's profile events come too (Jetstream filters by collection only): the pipeline keeps the
# tracked accounts' ones. plyr.fm's own ingester subscribes the same way.
COLLECTIONS = ("fm.plyr.*", BSKY_PROFILE)
_DICT_MAGIC = 0xEC30A437  # structured zstd dictionary (RFC 8878 §5)


def _base(url: str) -> str:
    base = (url if "://" in url else f"wss://{url}").rstrip("/")
    for suffix in (V2_PATH, V1_PATH):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def source_name(url: str, version: str) -> str:
    return f"jetstream-{version}:{urlsplit(_base(url)).netloc}"


def subscribe_url(url: str, version: str, cursor: int | None, collections: Sequence[str],
                  dictionary_id: int | None = None) -> str:
    params: list[tuple[str, str | int]] = []
    if version == "v2":
        params += [("collections", c) for c in collections]
        if dictionary_id is not None:
            params.append(("zstdDictionary", dictionary_id))
    else:
        params += [("wantedCollections", c) for c in collections]
    if cursor is not None:
        params.append(("cursor", cursor))
    path = V2_PATH if version == "v2" else V1_PATH
    return f"{_base(url)}{path}?{urlencode(params, safe='*')}"


def dictionary_id(raw: bytes) -> int:
    """The ID in a structured zstd dictionary's header; ValueError for anything else."""
    if len(raw) < 8:
        raise ValueError(f"{len(raw)} bytes is too short for a zstd dictionary")
    magic, ident = struct.unpack_from("<II", raw)
    if magic != _DICT_MAGIC or ident == 0:
        raise ValueError("not a structured zstd dictionary")
    return int(ident)


def jetstream_guard(name: str, version: str, cursor: int | None) -> SeqGuard:
    """v2 seqs are a counter (jumps need confirming); v1 time_us is a clock, whose gaps are idle time:
    no jump bound, but the decoder refuses readings far ahead of our clock instead."""
    return SeqGuard(name, cursor, max_jump=MAX_SEQ_JUMP if version == "v2" else None)


def http_base(url: str) -> str:
    base = _base(url)
    return "https://" + base[len("wss://"):] if base.startswith("wss://") else (
        "http://" + base[len("ws://"):] if base.startswith("ws://") else base)


class JetstreamSource(FirehoseSource):
    def __init__(
        self,
        url: str,
        *,
        version: str,
        cursor: int | None,
        collections: Sequence[str] = COLLECTIONS,
        compress: bool = True,
        batch_max: int = 2000,
        queue_bytes: int = DEFAULT_BUDGET,
        backoff_max_s: float = 60.0,
        guard: SeqGuard | None = None,
    ) -> None:
        if version not in ("v1", "v2"):
            raise ValueError(f"Jetstream version must be v1 or v2, got {version!r}")
        name = source_name(url, version)
        super().__init__(url, cursor=cursor, batch_max=batch_max, queue_bytes=queue_bytes,
                         backoff_max_s=backoff_max_s, guard=guard or jetstream_guard(name, version, cursor))
        self.name = name
        self.version = version
        self.collections = tuple(collections)
        self.compress = compress and version == "v2"  # v1's legacy dictionary scheme is not supported
        self.subprotocols = [SUBPROTOCOL] if version == "v2" else None
        self.dictionary_id: int | None = None
        self._dctx: zstandard.ZstdDecompressor | None = None
        # CursorTooOld: reported through `on_gap` (source, reason) before we connect at the floor.
        self.gap: str | None = None
        self.on_gap: Callable[[str, str], Awaitable[object]] | None = None

    async def connect_url(self) -> str:
        if self.gap is not None and self.on_gap is not None:
            await self.on_gap(self.name, self.gap)  # raises (and we start over) if it cannot be recorded
        self.gap = None
        if self.compress and self._dctx is None:
            await self._fetch_dictionary()
        return subscribe_url(self.url, self.version, self.resume, self.collections, self.dictionary_id)

    def seq_of(self, message: str | bytes) -> int | None:
        try:
            raw = message.encode() if isinstance(message, str) else message
            if isinstance(message, bytes) and self._dctx is not None:
                raw = self._dctx.decompress(message, max_output_size=MAX_FRAME_BYTES)
            event = orjson.loads(raw)
        except (orjson.JSONDecodeError, zstandard.ZstdError, UnicodeError):
            return None
        t = event.get("time_us") if isinstance(event, dict) else None
        return t if type(t) is int and 0 < t < 2**63 else None

    async def _fetch_dictionary(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=10.0) as http:
                r = await http.get(http_base(self.url) + DICTIONARY_PATH)
                r.raise_for_status()
            ident = dictionary_id(r.content)
            self._dctx = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(r.content))
            self.dictionary_id = ident
            log.info("jetstream.dictionary", source=self.name, id=ident, size=len(r.content))
        except (httpx.HTTPError, ValueError, zstandard.ZstdError) as e:
            # Uncompressed frames carry the same events: degrade, and try the dictionary again next connect.
            self._dctx, self.dictionary_id = None, None
            log.warning("jetstream.dictionary_unavailable", source=self.name, error=repr(e))

    def frame(self, message: str | bytes) -> bytes | None:
        if isinstance(message, str):
            return message.encode()
        if self._dctx is None:
            return message  # binary but we asked for no compression: let the decoder judge it
        try:
            return self._dctx.decompress(message, max_output_size=MAX_FRAME_BYTES)
        except zstandard.ZstdError as e:
            metrics.FRAME_ERRORS.labels(self.name).inc()
            log.warning("ingest.bad_frame", source=self.name, reason=f"zstd: {e}", size=len(message))
            self.guard.set_aside(Reject.of(self.name, message, "decompress", f"zstd: {e}"), None)
            return None

    def rejected(self, status: int, body: bytes) -> None:
        try:
            envelope = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            envelope = {}
        error = envelope.get("error") if isinstance(envelope, dict) else None
        message = str(envelope.get("message", "")) if isinstance(envelope, dict) else ""
        if error == "UnknownZstdDictionary":
            self._dctx, self.dictionary_id = None, None  # retired: fetch the current one
        elif error == "CursorTooOld":
            # Events between our cursor and the floor are gone from this host: a gap only a backfill
            # can repair. Say so loudly, then resume at the floor rather than never again.
            floor = next((int(w) for w in message.replace(",", " ").split() if w.isdigit()), None)
            log.error("jetstream.cursor_too_old", source=self.name, cursor=self.cursor, floor=floor,
                      message=message)
            self.gap = f"CursorTooOld: cursor {self.cursor}, floor {floor}: {message}"
            self.cursor = floor
        if error:
            log.warning("jetstream.rejected", source=self.name, status=status, error=error, message=message)
