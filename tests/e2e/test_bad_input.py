"""The real `Ingester` against an in-process relay that misbehaves the way real ones do.

The relay speaks `com.atproto.sync.subscribeRepos` framing over a real websocket, serves signed
frames from `framekit` and honours `?cursor=` (frames with seq > cursor). Scripts make it drop the
connection mid-stream right after a garbage frame, or answer 429 + Retry-After before it serves.
Identity comes from a `StaticResolver` swapped into the service, so no PLC and no node are needed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client import REGISTRY
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from core.events import Commit
from ingester.decode.frames import decode_frame
from ingester.service import Ingester
from ingester.settings import IngesterSettings
from ingester.sources.firehose import source_name
from tests.e2e.conftest import Query, eventually
from tests.ingester.framekit import PLC_URL, Net, StaticResolver, like, seq_of, track

GARBAGE = b"\xa2bopX\x00 this is not a frame"
PATH = "/xrpc/com.atproto.sync.subscribeRepos"


class FakeRelay:
    """Serves `frames` (seq-ordered). Connection `i` (0-based) sends at most `cut[i]` frames, then one
    garbage frame, then drops the TCP connection without a close handshake. The first `reject`
    handshakes get 429 with `Retry-After: 1`. `overlap=1` replays the frame at the cursor too (an
    inclusive replay, as some relays do after a reconnect)."""

    def __init__(self, frames: list[bytes], *, cut: tuple[int, ...] = (), reject: int = 0, overlap: int = 0) -> None:
        self.frames, self.cut, self.reject, self.overlap = frames, cut, reject, overlap
        self.cursors: list[int | None] = []  # the cursor each accepted connection asked for
        self.attempts: list[float] = []  # monotonic time of every handshake, rejected or not
        self.url = ""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeRelay]:
        async with serve(self._serve, "127.0.0.1", 0, process_request=self._gate) as server:
            self.url = f"ws://127.0.0.1:{_port(server)}"
            yield self

    def _gate(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts.append(time.monotonic())
        if urlsplit(request.path).path != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "no such method\n")
        if len(self.attempts) <= self.reject:
            response = connection.respond(HTTPStatus.TOO_MANY_REQUESTS, "slow down\n")
            response.headers["Retry-After"] = "1"
            return response
        return None

    async def _serve(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        cursor = int(query["cursor"][0]) if "cursor" in query else None
        n = len(self.cursors)
        self.cursors.append(cursor)
        start = None if cursor is None else cursor - self.overlap
        todo = [f for f in self.frames if start is None or (seq_of(f) or 0) > start]
        if n < len(self.cut):
            for f in todo[: self.cut[n]]:
                await ws.send(f)
            await ws.send(GARBAGE)
            await asyncio.sleep(0.2)  # let the client read what was sent before the line goes dead
            ws.transport.abort()  # no close frame: the client sees an abnormal closure (1006)
            return
        for f in todo:
            await ws.send(f)
        await ws.wait_closed()  # then idle, like a live tail, until the client leaves


def _port(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


def stream() -> tuple[Net, list[bytes]]:
    """Twelve frames over three repos: writes, an edit, a delete, a rejected record, identity and
    account changes, and a commit that is out of scope for us."""
    net = Net()
    alice, bob, carol = net.repo("alice.test"), net.repo("bob.test"), net.repo("carol.test")
    t = "fm.plyr.track/"
    t1, t2, t3, t4 = (f"{t}3kaaaaaaaa{c}22" for c in "abcd")
    frames = [
        alice.commit([("create", t1, track("one"))]),
        bob.commit([("create", "fm.plyr.like/3kbbbbbbbbb22", like(alice.uri(t1)))]),
        alice.commit([("update", t1, track("one (edit)"))]),
        alice.commit([("create", t2, track("two")), ("create", f"{t}3kaaaaaaaae22", track("x" * 300))]),
        bob.identity(),
        alice.commit([("create", t3, track("three"))]),
        bob.account(False, "deactivated"),
        alice.commit([("delete", t2, None)]),
        carol.commit([("create", "app.bsky.feed.post/3kccccccccc22", {"text": "not ours"})]),
        alice.commit([("create", t4, track("four"))]),
        bob.account(True),
        alice.commit([("update", t3, track("three (live)"))]),
    ]
    assert [seq_of(f) for f in frames] == list(range(1, 13))
    return net, frames


def expected_records(frames: list[bytes], dids: set[str]) -> dict[str, list[tuple[str, str, str, str]]]:
    """(collection, rkey, action, rev) per repo, in stream order."""
    out: dict[str, list[tuple[str, str, str, str]]] = {d: [] for d in dids}
    for raw in frames:
        frame = decode_frame(raw)
        if isinstance(frame, Commit):
            out[frame.did] += [(op.collection, op.rkey, op.action, frame.rev) for op in frame.ops]
    return out


@asynccontextmanager
async def ingester_following(db_url: str, url: str, resolver: StaticResolver) -> AsyncIterator[Ingester]:
    # a relay: trusted for every account's #account/#identity (the repos' documents name another PDS)
    settings = IngesterSettings(database_url=db_url, firehose_hosts=url, firehose_relays=url, plc_url=PLC_URL,
                                ingest_batch_max=500)
    ingester = Ingester(settings, db_url, resolver=resolver)
    stop = asyncio.Event()
    task = asyncio.create_task(ingester.run(stop))
    try:
        yield ingester
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def assert_log_and_projections(q: Query, net: Net, frames: list[bytes], source: str) -> None:
    alice, bob, carol = net.repos
    await eventually(q, "SELECT cursor FROM source_cursor WHERE source = %s", [(12,)], source, timeout=10)
    for did, want in expected_records(frames, {alice.did, bob.did, carol.did}).items():
        # every record event exactly once, in the repo's own order
        rows = await q("SELECT collection, rkey, action, rev FROM record_event WHERE did = %s ORDER BY seq", did)
        assert rows == want
    assert await q("SELECT count(*) FROM record_event WHERE NOT verified") == [(0,)]
    assert await q("SELECT rejected FROM record_event WHERE rejected IS NOT NULL") == [
        ("title: string longer than maxLength 256 bytes",)]
    assert await q("SELECT kind, payload->>'status' FROM repo_event WHERE did = %s ORDER BY seq", bob.did) == [
        ("identity", None), ("identity", None), ("account", "deactivated"), ("account", None)]
    assert sorted(await q("SELECT did, sync_status FROM repo_state")) == sorted(
        [(alice.did, "synchronized"), (bob.did, "synchronized")])

    await eventually(q, "SELECT title FROM track ORDER BY title", [("four",), ("one (edit)",), ("three (live)",)])
    await eventually(q, "SELECT handle, status FROM actor ORDER BY handle",
                     [("alice.test", "active"), ("bob.test", "active")])
    assert await q('SELECT subject_uri FROM "like"') == [(alice.uri("fm.plyr.track/3kaaaaaaaaa22"),)]


@pytest.mark.parametrize("overlap", [0, 1], ids=["exclusive-replay", "inclusive-replay"])
async def test_relay_drops_mid_stream_after_garbage(db_url: str, q: Query, overlap: int) -> None:
    net, frames = stream()
    relay = FakeRelay(frames, cut=(6,), overlap=overlap)
    async with relay.running(), ingester_following(db_url, relay.url, net.resolver()):
        source = source_name(relay.url)
        await assert_log_and_projections(q, net, frames, source)

    # the reconnect resumed from the cursor committed with the last batch of the dead connection
    assert relay.cursors == [None, 6]
    assert (REGISTRY.get_sample_value("ingest_frame_errors_total", {"source": source}) or 0) == 1
    assert (REGISTRY.get_sample_value("ingest_reconnects_total", {"source": source}) or 0) >= 1


async def test_relay_rate_limits_then_serves(db_url: str, q: Query) -> None:
    net, frames = stream()
    relay = FakeRelay(frames, reject=1)
    async with relay.running(), ingester_following(db_url, relay.url, net.resolver()):
        await assert_log_and_projections(q, net, frames, source_name(relay.url))

    assert relay.cursors == [None]  # one refused handshake, then one connection that served it all
    assert len(relay.attempts) == 2 and relay.attempts[1] - relay.attempts[0] >= 0.9  # waited Retry-After
