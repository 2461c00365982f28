"""Per-repo scheduling: a DID whose identity is slow delays only its own frames.

The slow host is real: a local TCP server that accepts the DID-document request and drips one byte every
0.5 s, forever (httpx's per-read timeouts never fire). Other repos' DID documents come from the in-memory PLC.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest

from core.identity import DidInfo, IdentityResolver
from core.outbound import Outbound
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.ingest import Ingest
from ingester.pipeline.parking import Item, ParkingLot
from ingester.pipeline.resolution import HostLimiter, Resolutions
from ingester.validate.records import RecordValidator
from ingester.verify.signature import SignatureVerifier
from tests.ingester.framekit import Net, StaticResolver, seq_of, track

VALIDATOR = RecordValidator()
SOURCE = "firehose:relay.test"
T = "fm.plyr.track/"


class DripServer:
    """Answers every request with headers and then one byte every `interval` seconds, never finishing."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> DripServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def did(self) -> str:
        return f"did:web:127.0.0.1%3A{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
            while True:
                await writer.drain()
                await asyncio.sleep(self.interval)
                writer.write(b" ")
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self.open -= 1
            writer.close()


class _Routed(httpx.AsyncBaseTransport):
    """Loopback requests go over the network (the drip server), everything else to the in-memory PLC."""

    def __init__(self, mock: httpx.MockTransport) -> None:
        self.mock, self.real = mock, httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "127.0.0.1":
            return await self.real.handle_async_request(request)
        return await self.mock.handle_async_request(request)

    async def aclose(self) -> None:
        await self.real.aclose()


class NetResolver(StaticResolver):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # loopback (the drip server) is a private address: the dev switch, as for the local PDS
        self._client = Outbound(transport=_Routed(httpx.MockTransport(self._serve)), allow_private=True)


@pytest.fixture
async def drip() -> AsyncIterator[DripServer]:
    async with DripServer() as server:
        yield server


async def rows(conn: psycopg.AsyncConnection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        out = await cur.fetchall()
    await conn.commit()
    return out


async def test_a_dripping_did_web_host_delays_only_its_own_repo(conn: psycopg.AsyncConnection,
                                                               drip: DripServer) -> None:
    net = Net()
    alice, bob, slow = net.repo("alice.test"), net.repo("bob.test"), net.repo("slow.test")
    slow.did = drip.did  # its DID document lives on the dripping host
    resolver = NetResolver(timeout_s=30)  # the resolver's own limits are not what saves us here
    for r in (alice, bob):
        resolver.publish(r)
    resolutions = Resolutions(resolver, deadline_s=1.5)
    ingest = Ingest(conn, source=SOURCE, resolver=resolver, verifier=SignatureVerifier(resolver),
                    validator=VALIDATOR, resolutions=resolutions)
    await ingest.handle([alice.commit([("create", T + "3kaaaaaaaaa22", track("a1"))]),
                         bob.commit([("create", T + "3kaaaaaaaaa22", track("b1"))])])
    await ingest.drain()

    s1 = slow.commit([("create", T + "3kaaaaaaaaa22", track("s1"))])
    batch = [s1, alice.commit([("create", T + "3kaaaaaaaab22", track("a2"))]),
             slow.commit([("create", T + "3kaaaaaaaab22", track("s2"))]),
             bob.commit([("create", T + "3kaaaaaaaab22", track("b2"))])]
    out = await ingest.handle(batch)
    # The batch returned while the slow DID's resolution is still dripping: it did not wait for it…
    pending = resolutions.pending(slow.did)
    assert pending is not None and not pending.done()
    # …and everybody else's commits are in the log already, the slow repo's parked, the cursor below them.
    logged = "SELECT title FROM record_event r, jsonb_to_record(r.record) AS x(title text) WHERE did = %s ORDER BY seq"
    assert [t for (t,) in await rows(conn, logged, alice.did)] == ["a1", "a2"]
    assert [t for (t,) in await rows(conn, logged, bob.did)] == ["b1", "b2"]
    assert await rows(conn, "SELECT count(*) FROM record_event WHERE did = %s", slow.did) == [(0,)]
    assert out.parked == 2 and out.last_seq == (seq_of(s1) or 0) - 1

    # More traffic while the host still drips: the others go straight through again.
    s3 = slow.commit([("create", T + "3kaaaaaaaac22", track("s3"))])
    a3 = alice.commit([("create", T + "3kaaaaaaaac22", track("a3"))])
    out = await ingest.handle([s3, a3])
    assert [t for (t,) in await rows(conn, logged, alice.did)] == ["a1", "a2", "a3"]
    assert out.parked == 3

    # The source goes quiet; the flusher processes the slow repo once its deadline is past: logged as
    # unverifiable (never moving a chain), in order, and the cursor catches up.
    stop = asyncio.Event()
    flusher = asyncio.create_task(ingest.run_parked(lambda: ingest.handle([]), stop))
    try:
        for _ in range(600):
            if not len(ingest.parking):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await flusher
    assert not len(ingest.parking)
    resolved = resolutions.result(slow.did)
    assert resolved is not None and resolved.error is not None and resolved.error.reason == "timeout"
    assert await rows(conn, "SELECT rkey, verified FROM record_event WHERE did = %s ORDER BY seq", slow.did) == [
        ("3kaaaaaaaaa22", False), ("3kaaaaaaaab22", False), ("3kaaaaaaaac22", False)]
    assert await rows(conn, "SELECT count(*) FROM repo_state WHERE did = %s", slow.did) == [(0,)]
    assert await rows(conn, "SELECT cursor FROM source_cursor WHERE source = %s", SOURCE) == [(seq_of(a3),)]
    assert drip.connections >= 1
    await resolver.aclose()


async def test_the_backfill_worker_gives_up_on_a_dripping_host(drip: DripServer, db_url: str) -> None:
    from ingester.backfill.worker import Backfiller
    from ingester.sources.repos import RepoFetcher

    resolver = NetResolver(timeout_s=30)
    backfiller = Backfiller(db_url, resolver=resolver, verifier=SignatureVerifier(resolver), validator=VALIDATOR,
                            fetcher=RepoFetcher(), identity_deadline_s=1.0)
    from core.db.connect import connect

    async with await connect(db_url) as conn:
        outcome = await backfiller.backfill(conn, drip.did)
    assert not outcome.ok and "timeout" in (outcome.reason or "")
    await backfiller.fetcher.aclose()
    await resolver.aclose()


class GatedResolver(IdentityResolver):
    """did:plc documents that arrive only when the test opens their gate; counts concurrent fetches."""

    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        super().__init__(plc_url="https://plc.test")
        self.docs, self.gates = docs, {d: asyncio.Event() for d in docs}
        self.running = self.max_running = 0

    async def _fetch(self, did: str) -> DidInfo:
        from core.identity import parse_did_doc

        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await self.gates[did].wait()
            return parse_did_doc(did, self.docs[did])
        finally:
            self.running -= 1


async def test_resolutions_are_limited_per_host() -> None:
    net = Net()
    repos = [net.repo(f"r{i}.test") for i in range(6)]
    resolver = GatedResolver({r.did: r.doc() for r in repos})
    resolutions = Resolutions(resolver, per_host=2, deadline_s=30)
    tasks = [resolutions.request(r.did, force=False, after=0.0) for r in repos]
    assert resolutions.request(repos[0].did, force=False, after=0.0) is tasks[0]  # joined, not repeated
    for _ in range(20):
        await asyncio.sleep(0)
    assert resolver.running == 2  # all six share the PLC host
    for gate in resolver.gates.values():
        gate.set()
    done = await asyncio.gather(*tasks)
    assert all(r.info is not None for r in done) and resolver.max_running == 2
    assert len(resolutions.limiter) == 0  # idle hosts are forgotten
    # a forced need is not met by a fetch asked for before the frame arrived
    later = resolutions.now()
    assert resolutions.request(repos[0].did, force=True, after=later) is not tasks[0]
    await resolutions.aclose()
    await resolver.aclose()


async def test_host_limiter_counts_waiters() -> None:
    limiter = HostLimiter(1)
    order: list[str] = []

    async def use(name: str) -> None:
        async with limiter.slot("h"):
            order.append(name)
            await asyncio.sleep(0)

    await asyncio.gather(use("a"), use("b"), use("c"))
    assert order == ["a", "b", "c"] and len(limiter) == 0


async def test_parking_is_bounded_and_drops_into_a_resync(conn: psycopg.AsyncConnection) -> None:
    net = Net()
    alice, slow = net.repo("alice.test"), net.repo("slow.test")
    resolver = GatedResolver({alice.did: alice.doc(), slow.did: slow.doc()})
    resolver.gates[alice.did].set()
    gate = ResyncGate()
    enrolled: list[tuple[str, str]] = []
    gate.on_enroll(lambda did, why: enrolled.append((did, why)))
    a1 = alice.commit([("create", T + "3kaaaaaaaaa22", track("a1"))])
    frames = [slow.commit([("create", T + f"3kaaaaaaaa{i}22", track("x" * 200))]) for i in range(2, 8)]
    bound = sum(len(f) for f in frames[-3:])  # room for exactly the three newest
    ingest = Ingest(conn, source=SOURCE, resolver=resolver, verifier=SignatureVerifier(resolver),
                    validator=VALIDATOR, gate=gate, parking=ParkingLot(max_repo_bytes=bound))
    await ingest.handle([a1])
    await ingest.drain()
    out = await ingest.handle(frames)
    # the three oldest went (only three fit), the repo is enrolled for a resync, and the cursor passes them
    assert out.parked == 3 and enrolled == [(slow.did, "parked frames dropped (identity too slow)")]
    assert out.last_seq == (seq_of(frames[3]) or 0) - 1
    resolver.gates[slow.did].set()
    await ingest.drain()
    # the kept ones are processed; the first is seen mid-chain (its predecessors are the resync's job)
    assert await rows(conn, "SELECT rkey FROM record_event WHERE did = %s ORDER BY seq", slow.did) == [
        ("3kaaaaaaaa522",), ("3kaaaaaaaa622",), ("3kaaaaaaaa722",)]
    assert await rows(conn, "SELECT sync_status FROM repo_state WHERE did = %s", slow.did) == [("desynchronized",)]
    await resolver.aclose()


def test_parking_lot_low_seq_and_global_bound() -> None:
    from core.events import AccountFrame

    async def main() -> None:
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        waiting = asyncio.get_running_loop().create_future()
        lot = ParkingLot(max_repo_bytes=1000, max_bytes=250)

        def item(did: str, seq: int) -> Item:
            return Item(AccountFrame(seq, did, True, None, ""), 100, 0.0)

        assert lot.park("did:a", item("did:a", 5), waiting) == {}  # type: ignore[arg-type]
        assert lot.park("did:b", item("did:b", 3), done) == {}  # type: ignore[arg-type]
        assert lot.low_seq() == 3
        # over the global bound: the queue holding the cursor back the most (did:b, seq 3) goes
        assert lot.park("did:a", item("did:a", 7)) == {"did:b": 1}
        assert lot.low_seq() == 5 and lot.dids == ["did:a"] and lot.size == 200
        assert lot.take_ready() == [] and not lot.ready()
        waiting.set_result(None)
        assert [i.seq for i in lot.take_ready()] == [5, 7] and lot.low_seq() is None and lot.size == 0

    asyncio.run(main())


async def test_the_flusher_retries_a_failed_flush(conn: psycopg.AsyncConnection) -> None:
    """A flush that fails (the database went away) is retried with backoff; nothing parked is lost."""
    net = Net()
    alice = net.repo("alice.test")
    resolver = GatedResolver({alice.did: alice.doc()})
    ingest = Ingest(conn, source=SOURCE, resolver=resolver, verifier=SignatureVerifier(resolver),
                    validator=VALIDATOR)
    await ingest.handle([alice.commit([("create", T + "3kaaaaaaaaa22", track("a1"))])])
    assert len(ingest.parking) == 1
    calls = 0

    async def flush() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database unavailable")
        await ingest.handle([])

    stop = asyncio.Event()
    flusher = asyncio.create_task(ingest.run_parked(flush, stop))
    resolver.gates[alice.did].set()
    try:
        for _ in range(400):
            if not len(ingest.parking):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await flusher
    assert calls == 2 and not len(ingest.parking)
    assert await rows(conn, "SELECT rkey, verified FROM record_event") == [("3kaaaaaaaaa22", True)]
    await resolver.aclose()
