"""A faithful local Jetstream: follows a PDS firehose and serves v1 `/subscribe` and v2 `subscribeEvents`.

What it reproduces (sync.md §2, bluesky-social/jetstream `docs/README.md` §5, the subscribeEvents lexicon):
- v2 `/xrpc/network.bsky.jetstream.subscribeEvents`: `xrpc.v1.json` subprotocol; `{"$type":"message",
  "payload":{…}}` frames; `seq` cursor, inclusive; `collections` (NSID or `prefix.*`, commits only),
  `kinds`, `dids`; v1 parameter names → 400 InvalidRequest; `zstdDictionary=<id>` → binary frames, one
  zstd frame (with the served dictionary) per JSON frame; unknown id → 400 UnknownZstdDictionary;
  a seq cursor below `floor_seq` → 400 CursorTooOld carrying the floor.
- `GET /xrpc/network.bsky.jetstream.getZstdDictionary`: the raw structured dictionary.
- v1 `/subscribe`: `time_us` cursor (≥ 1e15; smaller values are v2 seqs, as on the v2 server), inclusive;
  `wantedCollections`, `wantedDids`; `#identity`/`#account` always delivered; never `#sync`.
- No cursor: live tip. Live tail after replay. Positions are assigned once per event and never change.
Test hooks: `inject()` puts arbitrary (even malformed) frames in the stream, `drop_connections()` cuts
every subscriber, `wait_upstream()` waits until a PDS seq has been converted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import libipld
import websockets
import zstandard
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from tests.jetstream_fake.wire import Upstream, convert, v1_json, v2_json

DICTIONARY = (Path(__file__).parent / "subscribe_events_20260811.zdict").read_bytes()
DICTIONARY_ID = int.from_bytes(DICTIONARY[4:8], "little")
V2_PATH = "/xrpc/network.bsky.jetstream.subscribeEvents"
V1_PATH = "/subscribe"
DICT_PATH = "/xrpc/network.bsky.jetstream.getZstdDictionary"
TIMESTAMP_CURSOR = 10**15


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    time_us: int
    kind: str
    did: str
    collection: str | None
    v1: str | None  # None: not on the v1 wire
    v2: str | None


def _matches(pattern: str, collection: str) -> bool:
    return collection.startswith(pattern[:-1]) if pattern.endswith(".*") else collection == pattern


class FakeJetstream:
    def __init__(self, upstream_ws: str | None = None, *, first_seq: int = 1, upstream_cursor: int | None = None,
                 floor_seq: int = 0) -> None:
        self.upstream_ws = upstream_ws
        self.upstream_cursor = upstream_cursor
        self.events: list[Event] = []
        self.next_seq = first_seq
        self.last_time_us = 0
        self.floor_seq = floor_seq
        self.upstream_seq = 0
        self.changed = asyncio.Condition()
        self.connections: set[ServerConnection] = set()
        self.requests: list[str] = []  # every subscribe path asked for, in order
        self.server: Server | None = None
        self.follower: asyncio.Task[None] | None = None
        self.cctx = zstandard.ZstdCompressor(level=1, dict_data=zstandard.ZstdCompressionDict(DICTIONARY))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeJetstream:
        self.server = await serve(self._handler, "127.0.0.1", 0, process_request=self._process_request,
                                  subprotocols=[Subprotocol("xrpc.v1.json")], select_subprotocol=_select,
                                  compression=None, max_size=None)
        if self.upstream_ws:
            self.follower = asyncio.create_task(self._follow())
        return self

    async def stop(self) -> None:
        if self.follower:
            self.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.follower
        if self.server:
            self.server.close()
            await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    # ------------------------------------------------------------------ events

    async def add(self, up: Upstream, *, v1: str | None = None, v2: str | None = None, raw: bool = False) -> Event:
        """Give an event its position and publish it. `raw`: serve `v1`/`v2` verbatim (malformed allowed)."""
        seq = self.next_seq
        self.next_seq += 1
        self.last_time_us = max(self.last_time_us + 1, time.time_ns() // 1000)
        if not raw:
            v1, v2 = v1_json(up, self.last_time_us, seq), v2_json(up, self.last_time_us, seq)
        ev = Event(seq, self.last_time_us, up.kind, up.did, up.collection, v1, v2)
        async with self.changed:
            self.events.append(ev)
            self.changed.notify_all()
        return ev

    async def inject(self, *, v1: str | None, v2: str | None, did: str = "did:plc:injected",
                     kind: str = "commit", collection: str | None = "fm.plyr.track") -> Event:
        return await self.add(Upstream(kind, did, collection), v1=v1, v2=v2, raw=True)

    async def drop_connections(self) -> None:
        for ws in list(self.connections):
            await ws.close(1011, "dropped by the test")

    async def wait_upstream(self, seq: int, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            async with self.changed:
                await self.changed.wait_for(lambda: self.upstream_seq >= seq)

    async def _follow(self) -> None:
        assert self.upstream_ws is not None
        url = self.upstream_ws.rstrip("/") + "/xrpc/com.atproto.sync.subscribeRepos"
        if self.upstream_cursor is not None:
            url += f"?cursor={self.upstream_cursor}"
        async with connect(url, max_size=None) as ws:
            async for frame in ws:
                assert isinstance(frame, bytes)
                for up in convert(frame):
                    await self.add(up)
                body_seq = _seq_of(frame)
                async with self.changed:
                    self.upstream_seq = max(self.upstream_seq, body_seq)
                    self.changed.notify_all()

    # ------------------------------------------------------------------ serving

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        q = parse_qs(parts.query)
        if parts.path == DICT_PATH:
            return Response(200, "OK", Headers({"Content-Type": "application/octet-stream",
                                                 "Content-Length": str(len(DICTIONARY))}), DICTIONARY)
        if parts.path == V2_PATH:
            if "wantedCollections" in q or "wantedDids" in q:
                return _error(conn, "InvalidRequest", "use collections/dids on subscribeEvents")
            if "zstdDictionary" in q and q["zstdDictionary"][0] != str(DICTIONARY_ID):
                return _error(conn, "UnknownZstdDictionary", f"current dictionary id is {DICTIONARY_ID}")
            cursor = q.get("cursor", [None])[0]
            if cursor is not None and int(cursor) < min(self.floor_seq, TIMESTAMP_CURSOR):
                return _error(conn, "CursorTooOld", f"cursor is below the retention floor {self.floor_seq}")
            return None
        if parts.path == V1_PATH:
            return None
        return conn.respond(HTTPStatus.NOT_FOUND, "not found\n")

    def _start_index(self, cursor: str | None) -> int:
        if cursor is None:
            return len(self.events)
        c = int(cursor)
        key = (lambda e: e.time_us) if c >= TIMESTAMP_CURSOR else (lambda e: e.seq)
        return next((i for i, e in enumerate(self.events) if key(e) >= c), len(self.events))

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.requests.append(ws.request.path)
        parts = urlsplit(ws.request.path)
        q = parse_qs(parts.query)
        v2 = parts.path == V2_PATH
        collections = q.get("collections" if v2 else "wantedCollections", [])
        dids = set(q.get("dids" if v2 else "wantedDids", []))
        kinds = set(q.get("kinds", [])) if v2 else set()
        compress = v2 and "zstdDictionary" in q

        def wanted(e: Event) -> bool:
            if (dids and e.did not in dids) or (kinds and e.kind not in kinds):
                return False
            if e.kind == "commit" and collections and e.collection is not None:
                return any(_matches(p, e.collection) for p in collections)
            return True

        self.connections.add(ws)
        try:
            async with self.changed:
                i = self._start_index(q.get("cursor", [None])[0])
            while True:
                async with self.changed:
                    while i >= len(self.events):
                        if ws.state is not State.OPEN:
                            return  # closed (by the client or drop_connections) while idle
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.changed.wait(), 0.25)
                    batch = self.events[i:]
                i += len(batch)
                for e in batch:
                    text = e.v2 if v2 else e.v1
                    if text is None or not wanted(e):
                        continue
                    await ws.send(self.cctx.compress(text.encode()) if compress else text)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.connections.discard(ws)


def _select(conn: ServerConnection, offered: list[Subprotocol]) -> Subprotocol | None:
    # The lexicon makes xrpc.v1.json the default: unnegotiated connections get the same framing.
    return Subprotocol("xrpc.v1.json") if "xrpc.v1.json" in offered else None


def _error(conn: ServerConnection, error: str, message: str) -> Response:
    body = json.dumps({"error": error, "message": message}).encode()
    return Response(400, "Bad Request", Headers({"Content-Type": "application/json",
                                                 "Content-Length": str(len(body))}), body)


def _seq_of(frame: bytes) -> int:
    seq = libipld.decode_dag_cbor_multi(frame)[1].get("seq")
    return seq if isinstance(seq, int) else 0
