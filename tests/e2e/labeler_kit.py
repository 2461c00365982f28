"""A faithful fake labeler for end-to-end tests.

* Its DID is a real did:plc registered on the local PLC with a signed genesis operation naming an
  `atproto_label` verification method and an `atproto_labeler` service (the PLC verifies the op).
* It serves `com.atproto.label.subscribeLabels` over a real websocket: DAG-CBOR `#labels` frames,
  signed with the k256 key the DID document names, replayed from `?cursor=` then live.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import coincurve
import httpx
import libipld
from websockets.asyncio.server import Server, ServerConnection, serve

from core.crypto import PublicKey
from tests.ingester.labelkit import Labeler, sign


def _did_key(key: coincurve.PrivateKey) -> str:
    return PublicKey("k256", key.public_key.format()).did_key


async def register_labeler(plc_url: str, labeler: Labeler, handle: str = "labeler.test") -> str:
    """Create `labeler`'s did:plc on the PLC directory (genesis op signed by a fresh rotation key)."""
    rotation = coincurve.PrivateKey()
    op: dict[str, Any] = {
        "type": "plc_operation",
        "rotationKeys": [_did_key(rotation)],
        "verificationMethods": {"atproto_label": labeler.did_key},
        "alsoKnownAs": [f"at://{handle}"],
        "services": {"atproto_labeler": {"type": "AtprotoLabeler", "endpoint": labeler.endpoint}},
        "prev": None,
    }
    sig = sign(rotation, bytes(libipld.encode_dag_cbor(op)))
    op["sig"] = base64.urlsafe_b64encode(sig).decode().rstrip("=")
    digest = hashlib.sha256(bytes(libipld.encode_dag_cbor(op))).digest()
    did = "did:plc:" + base64.b32encode(digest).decode().lower()[:24]
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{plc_url}/{did}", json=op)
        r.raise_for_status()
    labeler.did = did
    return did


class FakeLabeler:
    """The websocket side. `emit(labels)` appends one `#labels` frame and wakes every subscriber."""

    def __init__(self, labeler: Labeler) -> None:
        self.labeler = labeler
        self.frames: list[tuple[int, bytes]] = []
        self.wake = asyncio.Event()
        self.server: Server | None = None
        self.connections = 0

    async def start(self) -> str:
        self.server = await serve(self._serve, "127.0.0.1", 0)
        port = next(iter(self.server.sockets)).getsockname()[1]
        self.labeler.endpoint = f"http://127.0.0.1:{port}"
        return self.labeler.endpoint

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def emit(self, labels: list[dict[str, Any]]) -> int:
        frame = self.labeler.frame(labels)
        self.frames.append((self.labeler.seq, frame))
        self.wake.set()
        self.wake = asyncio.Event()  # subscribers still waiting hold the old, set event
        return self.labeler.seq

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        request = ws.request
        path = urlsplit(request.path if request else "/")
        if path.path != "/xrpc/com.atproto.label.subscribeLabels":
            await ws.close(1008, "unknown method")
            return
        cursor_values = parse_qs(path.query).get("cursor")
        cursor = int(cursor_values[0]) if cursor_values else None
        sent = cursor if cursor is not None else (self.frames[-1][0] if self.frames else 0)
        closed = asyncio.ensure_future(ws.wait_closed())
        try:
            while not closed.done():
                pending = [(s, f) for s, f in self.frames if s > sent]
                if not pending:
                    # Wake on a new frame or on the connection closing (server stop, client gone).
                    woken = asyncio.ensure_future(self.wake.wait())
                    await asyncio.wait({woken, closed}, return_when=asyncio.FIRST_COMPLETED)
                    woken.cancel()
                    continue
                for seq, frame in pending:
                    await ws.send(frame)
                    sent = seq
        finally:
            closed.cancel()
