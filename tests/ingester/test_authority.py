"""Who may tell us what: a PDS followed directly speaks only for its own accounts, a relay as a relay; a #sync
moves a rev only when signed; no rev from the far future; a verified snapshot repairs a bogus stored chain."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import coincurve
import psycopg
import pytest
from prometheus_client import REGISTRY

from core.db.connect import connect
from ingester.backfill.worker import Backfiller
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.ingest import Ingest
from ingester.projection.runner import Projector
from ingester.validate.records import RecordValidator
from ingester.verify.authority import Upstream, origin
from ingester.verify.chain import ChainState
from ingester.verify.signature import SignatureVerifier
from tests.ingester.framekit import Net, Repo, StaticResolver, cid_of, cid_str, rev_of, seq_of, tid, track
from tests.ingester.test_resync import ScriptedFetcher, current_snapshot

VALIDATOR = RecordValidator()
RELAYS = ["bsky.network"]
T = "fm.plyr.track/"
FAR_FUTURE = "zzzzzzzzzzzzz"


class World:
    """One database; repos hosted on https://pds.test; sources following a relay, their PDS, or another PDS."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn = conn
        self.net = Net()
        self.resolver = StaticResolver()
        self.verifier = SignatureVerifier(self.resolver)
        self.repos: dict[str, ChainState] = {}
        self.gate = ResyncGate()
        self.enrolled: list[tuple[str, str]] = []
        self.gate.on_enroll(lambda did, why: self.enrolled.append((did, why)))
        self.relay = self.ingest("wss://bsky.network")
        self.home = self.ingest("wss://pds.test")
        self.evil = self.ingest("wss://evil.test")

    def ingest(self, url: str, **kw: Any) -> Ingest:
        return Ingest(self.conn, source=f"firehose:{url[6:]}", resolver=self.resolver, verifier=self.verifier,
                      validator=VALIDATOR, repos=self.repos, gate=self.gate,
                      upstream=Upstream.of(url, RELAYS), **kw)

    def repo(self, handle: str = "alice.test") -> Repo:
        r = self.net.repo(handle)
        self.resolver.publish(r)
        return r

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, params)
            rows = await cur.fetchall()
        await self.conn.commit()
        return rows

    async def kinds(self, did: str) -> list[tuple[str, str]]:
        return [(k, s) for k, s in await self.rows("SELECT kind, source FROM repo_event WHERE did = %s ORDER BY seq",
                                                   did)]

    async def state(self, did: str) -> tuple[Any, ...]:
        [row] = await self.rows("SELECT rev, sync_status, desync_reason FROM repo_state WHERE did = %s", did)
        return row


async def run(ingest: Ingest, *frames: bytes) -> None:
    await ingest.handle(frames)
    await ingest.drain()


def unauthorised(kind: str, reason: str) -> float:
    return REGISTRY.get_sample_value("ingest_unauthorised_total", {"kind": kind, "reason": reason}) or 0.0


@pytest.fixture
async def world(conn: psycopg.AsyncConnection) -> AsyncIterator[World]:
    w = World(conn)
    yield w
    await w.resolver.aclose()


def test_origins_compare_scheme_host_and_port_only() -> None:
    assert origin("wss://PDS.example.com/") == origin("https://pds.example.com") == "https://pds.example.com"
    assert origin("ws://localhost:2583") == origin("http://localhost:2583/xrpc") == "http://localhost:2583"
    assert origin("https://pds.example.com:443") == "https://pds.example.com"
    assert origin("pds.example.com") == "https://pds.example.com"
    assert origin("http://pds.example.com") != origin("https://pds.example.com")
    for bad in ("", None, "ftp://x", "https://", "https://[::1", "https://h:99999"):
        assert origin(bad) is None
    assert Upstream.of("wss://bsky.network", RELAYS).relay
    assert not Upstream.of("wss://bsky.network.evil.test", RELAYS).relay
    assert not Upstream.of("wss://pds.test", RELAYS).relay


async def test_a_pds_speaks_only_for_the_accounts_it_hosts(world: World) -> None:
    alice = world.repo()
    await run(world.relay, alice.commit([("create", T + "3kaaaaaaaaa22", track("one"))]))
    before = unauthorised("account", "DID document names another PDS")
    fetches = world.resolver.fetches_by_did[alice.did]

    # Spoofs from a PDS that does not host alice: a takedown, a reactivation, an identity, a #sync.
    spoofs = [alice.account(False, "takendown"), alice.account(True), alice.account(False, "takendown"),
              alice.identity(handle="mallory.test"), alice.sync(data=cid_of(b"wiped"), advance=False)]
    await run(world.evil, *spoofs)
    assert await world.kinds(alice.did) == [("identity", "firehose:bsky.network")]
    assert await world.state(alice.did) == (alice.rev, "synchronized", None)
    assert unauthorised("account", "DID document names another PDS") - before == 3
    # one forced refresh (the account might just have moved there), then the refresh cooldown holds
    assert world.resolver.fetches_by_did[alice.did] - fetches <= 2  # the refresh + #identity's own re-resolution
    assert await world.rows("SELECT cursor FROM source_cursor WHERE source = 'firehose:evil.test'") == [
        (seq_of(spoofs[-1]),)]  # the rejected frames are still consumed

    # The same takedown from alice's own PDS, and a reactivation relayed by the relay, are applied.
    await run(world.home, alice.account(False, "takendown"))
    await Projector().catch_up(world.conn)
    assert await world.rows("SELECT status FROM actor WHERE did = %s", alice.did) == [("takendown",)]
    await run(world.relay, alice.account(True))
    await Projector().catch_up(world.conn)
    assert await world.rows("SELECT status, active FROM actor WHERE did = %s", alice.did) == [("active", True)]
    assert [s for k, s in await world.kinds(alice.did) if k == "account"] == [
        "firehose:pds.test", "firehose:bsky.network"]


async def test_an_account_that_moved_is_accepted_from_its_new_pds_after_one_refresh(world: World) -> None:
    alice = world.repo()
    await run(world.relay, alice.commit([("create", T + "3kaaaaaaaaa22", track("one"))]))
    alice.pds = "https://evil.test"  # migrated: PLC says so, our cached document does not yet
    world.resolver.publish(alice)
    await run(world.evil, alice.account(True), alice.identity())
    assert [k for k, _ in await world.kinds(alice.did)] == ["identity", "account", "identity"]
    # …and now pds.test no longer speaks for alice
    await run(world.home, alice.account(False, "deactivated"))
    assert [k for k, _ in await world.kinds(alice.did)] == ["identity", "account", "identity"]


async def test_an_unresolvable_did_gets_nothing_from_a_pds(world: World) -> None:
    alice = world.repo()
    await run(world.relay, alice.commit([("create", T + "3kaaaaaaaaa22", track("one"))]))
    del world.resolver.docs[alice.did]
    world.resolver.invalidate(alice.did)
    await run(world.home, alice.account(False, "takendown"))
    assert await world.kinds(alice.did) == [("identity", "firehose:bsky.network")]


async def test_an_unverifiable_sync_never_moves_the_rev(world: World) -> None:
    alice = world.repo()
    c1 = alice.commit([("create", T + "3kaaaaaaaaa22", track("one"))])
    await run(world.relay, c1)

    # A #sync from the far future (the hostile tester's `zzzzzzzzzzzzz`), signed or not, and a signed one
    # beyond the skew: refused by the rev rule before anything else.
    await run(world.relay, alice.sync(rev=FAR_FUTURE, advance=False),
              alice.sync(rev=FAR_FUTURE, advance=False, key=coincurve.PrivateKey()),
              alice.sync(rev=tid((time.time_ns() // 1000) + 3_600_000_000), advance=False))
    # A plausible #sync whose signature cannot be checked: the DID document has no usable key.
    keyless = {**alice.doc(), "verificationMethod": []}
    world.resolver.docs[alice.did] = keyless
    world.resolver.invalidate(alice.did)
    await run(world.relay, alice.sync(data=cid_of(b"reset"), advance=False))
    assert await world.state(alice.did) == (rev_of(c1), "synchronized", None)
    assert world.repos[alice.did].rev == rev_of(c1)
    assert "sync" not in [k for k, _ in await world.kinds(alice.did)]

    # The key comes back (announced by #identity): later genuine commits chain on c1 and are applied (the
    # #syncs never counted).
    world.resolver.publish(alice)
    ident = alice.identity()  # built first: a stream's seqs only go up (a lower one is a duplicate)
    c2 = alice.commit([("create", T + "3kaaaaaaaab22", track("two"))])
    await run(world.relay, ident, c2)
    assert await world.state(alice.did) == (rev_of(c2), "synchronized", None)
    assert await world.rows("SELECT rkey, verified FROM record_event WHERE did = %s ORDER BY seq", alice.did) == [
        ("3kaaaaaaaaa22", True), ("3kaaaaaaaab22", True)]


async def test_the_future_skew_is_one_setting_for_commits_and_syncs(world: World) -> None:
    alice = world.repo()
    strict = world.ingest("wss://bsky.network", rev_skew_s=1.0)
    await run(strict, alice.commit([("create", T + "3kaaaaaaaaa22", track("one"))]))
    ahead = tid(time.time_ns() // 1000 + 120_000_000)  # two minutes ahead: fine by default, not with 1 s
    await run(strict, alice.commit([("create", T + "3kaaaaaaaab22", track("two"))], rev=ahead, advance=False),
              alice.sync(rev=ahead, advance=False))
    assert [r for (r,) in await world.rows("SELECT rkey FROM record_event")] == ["3kaaaaaaaaa22"]
    await run(world.relay, alice.commit([("create", T + "3kaaaaaaaab22", track("two"))], rev=ahead))
    assert [r for (r,) in await world.rows("SELECT rkey FROM record_event ORDER BY seq")] == [
        "3kaaaaaaaaa22", "3kaaaaaaaab22"]


async def test_a_verified_snapshot_repairs_a_bogus_stored_chain(world: World, db_url: str) -> None:
    """A stored rev in the far future (an earlier bug) froze the repo: every genuine commit looked like a
    duplicate and every snapshot like an older one. The live path now treats the stored chain as bogus, and
    the resync accepts the verified snapshot."""
    alice = world.repo()
    records = {T + "3kaaaaaaaaa22": track("one")}
    await run(world.relay, alice.commit([("create", T + "3kaaaaaaaaa22", records[T + "3kaaaaaaaaa22"])]))
    await world.conn.execute("UPDATE repo_state SET rev = %s WHERE did = %s", (FAR_FUTURE, alice.did))
    await world.conn.commit()
    world.repos.clear()
    await world.relay.load_tracked()  # a restart: the bogus rev comes back from repo_state
    assert world.repos[alice.did].rev == FAR_FUTURE

    async def serve(did: str) -> bytes:
        return current_snapshot(alice, records)

    backfiller = Backfiller(db_url, resolver=world.resolver, verifier=world.verifier, validator=VALIDATOR,
                            fetcher=ScriptedFetcher(serve), gate=world.gate, repos=world.repos)
    async with await connect(db_url) as work:
        outcome = await backfiller.backfill(work, alice.did)
    assert outcome.ok, outcome.reason
    assert await world.state(alice.did) == (alice.rev, "synchronized", None)

    # …and the live path, meeting a bogus stored rev, applies the commit and asks for a resync
    world.repos[alice.did] = ChainState(FAR_FUTURE, None, "synchronized")
    records[T + "3kaaaaaaaab22"] = track("two")
    c2 = alice.commit([("create", T + "3kaaaaaaaab22", records[T + "3kaaaaaaaab22"])])
    await run(world.relay, c2)
    rev, status, reason = await world.state(alice.did)
    assert (rev, status) == (rev_of(c2), "desynchronized") and "implausible" in reason
    assert world.enrolled[-1][0] == alice.did
    async with await connect(db_url) as work:
        outcome = await backfiller.backfill(work, alice.did)
        await Projector().catch_up(work)
    assert outcome.ok and await world.state(alice.did) == (alice.rev, "synchronized", None)
    assert await world.rows("SELECT title FROM track ORDER BY title") == [("one",), ("two",)]


async def test_a_snapshot_older_than_a_plausible_chain_is_still_refused(world: World, db_url: str) -> None:
    alice = world.repo()
    records = {T + "3kaaaaaaaaa22": track("one")}
    await run(world.relay, alice.commit([("create", T + "3kaaaaaaaaa22", records[T + "3kaaaaaaaaa22"])]))
    snapshot = current_snapshot(alice, records)
    newer = tid(time.time_ns() // 1000 + 1_000_000)  # ahead of the snapshot, within the skew: plausible
    world.repos[alice.did] = ChainState(newer, cid_str(alice.data or b""), "synchronized")

    async def serve(did: str) -> bytes:
        return snapshot

    backfiller = Backfiller(db_url, resolver=world.resolver, verifier=world.verifier, validator=VALIDATOR,
                            fetcher=ScriptedFetcher(serve), gate=world.gate, repos=world.repos)
    async with await connect(db_url) as work:
        outcome = await backfiller.backfill(work, alice.did)
    assert not outcome.ok and "older than our chain" in (outcome.reason or "")
