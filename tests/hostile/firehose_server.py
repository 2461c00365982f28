"""A hostile `com.atproto.sync.subscribeRepos` server: valid frames with anything spliced between them.

It speaks the real framing over a real websocket (binary messages, header + body DAG-CBOR) and honours
`?cursor=` like the reference PDS (frames with seq > cursor; `inclusive=True` also replays the one at the
cursor, as some relays do). Valid frames come from `tests.ingester.framekit`; `splice` puts arbitrary
bytes right after a valid frame's position, so they are replayed after a reconnect exactly when the frame
before them is. After the script it idles like a live tail; `extend` appends more while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import cbor2
import libipld
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

PATH = "/xrpc/com.atproto.sync.subscribeRepos"


def seq_of(frame: bytes) -> int | None:
    try:
        seq = libipld.decode_dag_cbor_multi(frame)[1].get("seq")
    except Exception:
        return None
    return seq if type(seq) is int else None


# ------------------------------------------------------------------ hostile frames


def envelope(t: str, body: dict[str, object], op: int = 1) -> bytes:
    """Header + body as plain CBOR (cbor2 canonical = DAG-CBOR key order); any body, however wrong."""
    return cbor2.dumps({"op": op, "t": t}, canonical=True) + cbor2.dumps(body, canonical=True)


def identity_with_seq(seq: int, did: str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa") -> bytes:
    """A 95-byte-ish `#identity` whose seq is whatever we say (2^63 broke the cursor write)."""
    return envelope("#identity", {"seq": seq, "did": did, "time": "2026-12-01T00:00:00.000Z"})


def random_bytes(n: int, seed: int = 0) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def truncated(frame: bytes) -> bytes:
    return frame[: len(frame) // 2]


def deep_nesting(depth: int = 100_000) -> bytes:
    """A header, then a body that is an array nested `depth` levels deep."""
    return cbor2.dumps({"op": 1, "t": "#commit"}, canonical=True) + b"\x81" * depth + b"\x00"


def empty_maps(count: int = 5_000_000) -> bytes:
    """The 4.9 MB frame that took 6.8 s to decode: a header, then `count` empty maps in one array."""
    return cbor2.dumps({"op": 1, "t": "#commit"}, canonical=True) + b"\x9a" + count.to_bytes(4, "big") + b"\xa0" * count


def slow_frame(seq: int, items: int = 19_000) -> bytes:
    """Just inside the envelope's work bound: a frame of an unknown type padded with many small items,
    the most a frame can make us decode before it is looked at (then skipped, moving the cursor)."""
    return envelope("#padding", {"seq": seq, "pad": list(range(items))})


def huge_frame(size: int = 50 * 1024 * 1024) -> bytes:
    """Over the 5 MB frame limit: the websocket layer refuses it (1009) before reading it."""
    return envelope("#identity", {"seq": 1, "did": "did:plc:x", "time": "t", "pad": bytes(size)})


# ------------------------------------------------------------------ the server


@dataclass
class HostileRelay:
    frames: list[bytes] = field(default_factory=list)
    inclusive: bool = False
    cursors: list[int | None] = field(default_factory=list)  # what each connection asked for
    tip: int | None = None  # a connection without a cursor starts after this seq (the live tip); None: from the start
    url: str = ""
    _script: list[tuple[int, bytes]] = field(default_factory=list)  # (position, frame) in send order
    _grew: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        for f in self.frames:
            self._add(f)

    def _add(self, frame: bytes, seq: int | None = None) -> None:
        seq = seq_of(frame) if seq is None else seq
        if seq is None:
            raise ValueError("valid frames need a seq; use splice() for anything else")
        self._script.append((2 * seq, frame))

    def at(self, seq: int, frame: bytes) -> HostileRelay:
        """A frame that owns the stream position `seq` (as a host's every frame does), whatever it holds:
        a huge one is then skipped by moving the cursor past `seq`."""
        self._add(frame, seq)
        self._script.sort(key=lambda pf: pf[0])
        return self

    def splice(self, after: bytes | None, *junk: bytes) -> HostileRelay:
        """Send `junk` right after the valid frame `after` (None: before everything)."""
        pos = 2 * (seq_of(after) or 0) + 1 if after is not None else 1
        at = next((i for i, (p, _) in enumerate(self._script) if p > pos), len(self._script))
        self._script[at:at] = [(pos, j) for j in junk]
        return self

    def extend(self, *frames: bytes) -> None:
        for f in frames:
            self._add(f)
        self._grew.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[HostileRelay]:
        async with serve(self._serve, "127.0.0.1", 0, process_request=self._gate, max_size=None,
                         write_limit=2**27) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}"
            yield self

    def _gate(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "no such method\n")
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        self.cursors.append(cursor)
        if cursor is None:
            floor = -1 if self.tip is None else 2 * self.tip
        else:
            floor = 2 * cursor - (1 if self.inclusive else 0)
        sent = 0
        with contextlib.suppress(ConnectionClosed):
            while True:
                todo = [f for p, f in self._script[sent:] if p > floor]
                sent = len(self._script)
                for frame in todo:
                    await ws.send(frame)
                self._grew.clear()
                grew = asyncio.create_task(self._grew.wait())
                closed = asyncio.create_task(ws.wait_closed())
                await asyncio.wait({grew, closed}, return_when=asyncio.FIRST_COMPLETED)
                grew.cancel()
                if closed.done():
                    return
