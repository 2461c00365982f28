"""`Ingest.handle` on signed frames from `framekit`, against a real Postgres, then the projector.

Each test builds repos with real k256 keys; a `StaticResolver` plays PLC, so signature checks,
DID-doc refreshes and 404s all run through the production resolver and verifier.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from core.db.connect import connect
from ingester.decode.frames import FrameError, decode_frame
from ingester.pipeline.ingest import BatchOutcome, Ingest
from ingester.projection.runner import Projector
from ingester.validate.records import RecordValidator
from ingester.verify.chain import ChainState
from ingester.verify.signature import SignatureVerifier
from tests.ingester.framekit import (
    Net,
    Repo,
    StaticResolver,
    cid_of,
    cid_str,
    error_frame,
    info_frame,
    like,
    rev_of,
    seq_of,
    tid,
    track,
)

SOURCE = "firehose:relay.test"
TRACK = "fm.plyr.track"
LIKE = "fm.plyr.like"
VALIDATOR = RecordValidator()  # loading lexicons once keeps the suite fast


class Rig:
    """One database, one upstream (`net`), a PLC stand-in and an `Ingest` wired like the service."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn = conn
        self.net = Net()
        self.resolver = StaticResolver()
        self.verifier = SignatureVerifier(self.resolver)
        self.repos: dict[str, ChainState] = {}
        self.ingest = self.new_ingest()

    def new_ingest(self, source: str = SOURCE, *, shared: bool = True) -> Ingest:
        return Ingest(self.conn, source=source, resolver=self.resolver, verifier=self.verifier,
                      validator=VALIDATOR, repos=self.repos if shared else None)

    def repo(self, handle: str = "alice.test", *, published: bool = True) -> Repo:
        r = self.net.repo(handle)
        if published:
            self.resolver.publish(r)
        return r

    async def handle(self, *frames: bytes) -> BatchOutcome:
        """One batch, then the batches that process what it parked (the service's `run_parked`)."""
        out = await self.ingest.handle(frames)
        return out.merge(await self.ingest.drain())

    async def project(self) -> int:
        return await Projector().catch_up(self.conn)

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.conn.cursor() as cur:
            await cur.execute(sql, params)
            rows = await cur.fetchall()
        await self.conn.commit()  # never leave a transaction open: appends must really commit
        return rows

    async def records(self, did: str) -> list[tuple[Any, ...]]:
        """(collection, rkey, action, verified, rejected) in log order."""
        return await self.rows("SELECT collection, rkey, action, verified, rejected FROM record_event "
                               "WHERE did = %s ORDER BY seq", did)

    async def repo_events(self, did: str) -> list[tuple[Any, ...]]:
        return await self.rows("SELECT kind, rev, payload FROM repo_event WHERE did = %s ORDER BY seq", did)

    async def kinds(self, did: str) -> list[str]:
        return [k for k, _, _ in await self.repo_events(did)]

    async def state(self, did: str) -> tuple[Any, ...] | None:
        rows = await self.rows("SELECT rev, data_cid, sync_status, desync_reason FROM repo_state WHERE did = %s",
                               did)
        return rows[0] if rows else None

    async def cursor(self, source: str = SOURCE) -> int | None:
        rows = await self.rows("SELECT cursor FROM source_cursor WHERE source = %s", source)
        return rows[0][0] if rows else None

    async def aclose(self) -> None:
        await self.resolver.aclose()


@pytest.fixture
async def rig(conn: psycopg.AsyncConnection) -> AsyncIterator[Rig]:
    r = Rig(conn)
    yield r
    await r.aclose()


def t(rkey: str) -> str:
    return f"{TRACK}/{rkey}"


R1, R2, R3 = "3kaaaaaaaaa22", "3kbbbbbbbbb22", "3kccccccccc22"


# ---------------------------------------------------------------- the happy path


async def test_valid_commits_land_verified_and_projected(rig: Rig) -> None:
    alice, bob = rig.repo("alice.test"), rig.repo("bob.test")
    frames = [
        alice.commit([("create", t(R1), track("first")), ("create", t(R2), track("second"))]),
        alice.commit([("update", t(R1), track("first (edit)")), ("delete", t(R2), None)]),
        bob.commit([("create", f"{LIKE}/{R3}", like(alice.uri(t(R1))))]),
    ]
    out = await rig.handle(*frames)

    assert out.errors == [] and out.last_seq == 3
    assert out.appended == 5 + 2  # five record ops + one identity event per newly seen repo
    assert await rig.records(alice.did) == [
        (TRACK, R1, "create", True, None), (TRACK, R2, "create", True, None),
        (TRACK, R1, "update", True, None), (TRACK, R2, "delete", True, None)]
    assert await rig.records(bob.did) == [(LIKE, R3, "create", True, None)]
    # first sight of a repo logs its identity (from the DID doc) before its records
    [(kind, _, payload)] = await rig.repo_events(alice.did)
    assert kind == "identity" and payload["handle"] == "alice.test" and payload["signing_key"] == alice.did_key
    assert await rig.state(alice.did) == (alice.rev, cid_str(alice.data or b""), "synchronized", None)
    assert rig.verifier.stats()["verified"] == 3 and rig.resolver.fetches_by_did[alice.did] == 1

    await rig.project()
    assert await rig.rows("SELECT uri, title FROM track") == [(alice.uri(t(R1)), "first (edit)")]
    assert await rig.rows('SELECT did, subject_uri FROM "like"') == [(bob.did, alice.uri(t(R1)))]
    assert await rig.rows("SELECT handle, status FROM actor ORDER BY handle") == [
        ("alice.test", "active"), ("bob.test", "active")]


# ---------------------------------------------------------------- signatures and identity


async def test_forged_commit_is_not_logged_and_is_marked(rig: Rig) -> None:
    alice = rig.repo()
    good1 = alice.commit([("create", t(R1), track("real"))])
    forged = alice.forged([("create", t(R2), track("spam")), ("delete", t(R1), None)])
    good2 = alice.commit([("create", t(R3), track("also real"))])  # chains on good1: the forgery never counted

    await rig.handle(good1, forged, good2)

    assert await rig.records(alice.did) == [(TRACK, R1, "create", True, None), (TRACK, R3, "create", True, None)]
    events = await rig.repo_events(alice.did)
    assert [(k, rev, p) for k, rev, p in events if k != "identity"] == [
        ("forged", rev_of(forged), {"reason": "bad signature"})]
    # the cached doc failed, so the verifier refreshed it exactly once before calling it forged
    assert rig.resolver.fetches_by_did[alice.did] == 2
    assert rig.verifier.stats()["refreshed"] == 1 and rig.verifier.stats()["forged"] == 1
    assert (await rig.state(alice.did) or ())[2:] == ("synchronized", None)

    await rig.project()
    assert await rig.rows("SELECT title FROM track ORDER BY title") == [("also real",), ("real",)]


async def test_key_rotation_verifies_after_one_refresh(rig: Rig) -> None:
    alice = rig.repo()
    await rig.handle(alice.commit([("create", t(R1), track("old key"))]))
    alice.rotate_key()
    rig.resolver.publish(alice)  # PLC now has the new key; our cache still holds the old doc
    await rig.handle(alice.commit([("create", t(R2), track("new key"))]))

    assert await rig.records(alice.did) == [(TRACK, R1, "create", True, None), (TRACK, R2, "create", True, None)]
    assert "forged" not in await rig.kinds(alice.did)
    assert rig.resolver.fetches_by_did[alice.did] == 2 and rig.verifier.stats()["refreshed"] == 1
    # later commits verify against the refreshed cache, without another fetch
    await rig.handle(alice.commit([("delete", t(R1), None)]))
    assert rig.resolver.fetches_by_did[alice.did] == 2
    await rig.project()
    assert await rig.rows("SELECT title FROM track") == [("new key",)]


async def test_unknown_did_is_logged_unverified_and_not_projected(rig: Rig) -> None:
    ghost = rig.repo("ghost.test", published=False)  # PLC answers 404
    await rig.handle(ghost.commit([("create", t(R1), track("who am i"))]),
                     ghost.commit([("create", t(R2), track("still nobody"))]))

    assert await rig.records(ghost.did) == [(TRACK, R1, "create", False, None), (TRACK, R2, "create", False, None)]
    assert await rig.repo_events(ghost.did) == []  # nothing trustworthy to say about its identity
    assert rig.verifier.stats()["unresolvable"] == 2
    assert rig.resolver.fetches_by_did[ghost.did] == 1  # the 404 is cached, not refetched per commit
    # an unverifiable rev never moves the chain (it could shadow the genuine commits)
    assert await rig.state(ghost.did) is None

    await rig.project()
    assert await rig.rows("SELECT count(*) FROM track") == [(0,)]
    assert await rig.rows("SELECT count(*) FROM actor") == [(0,)]
    # …while a projector configured to serve unverified data does project it
    await Projector(name="unverified", project_unverified=True).catch_up(rig.conn)
    assert await rig.rows("SELECT title FROM track ORDER BY title") == [("still nobody",), ("who am i",)]


# ---------------------------------------------------------------- validation


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "3kinvalidaa22": (track("x" * 300), "title: string longer than maxLength 256 bytes"),
    "3kinvalidba22": (track(42), "title: expected string, got integer"),  # type: ignore[arg-type]
    "3kinvalidca22": (track(duration=1.5), "duration: expected integer, got float"),
    "3kinvalidda22": ({**track(), "$type": LIKE}, "$type 'fm.plyr.like' does not match collection 'fm.plyr.track'"),
    "3kinvalidea22": (track("nul\x00byte"), "string contains U+0000"),
    # NUL plus another fault: the record must still never reach jsonb (which cannot hold U+0000)
    "3kinvalidfa22": (track("nul\x00byte", artist=""), "string contains U+0000"),
    "3kinvalidga22": ({**track(), "x\x00": 1}, "string contains U+0000"),
}


async def test_invalid_records_are_logged_rejected_and_the_rest_lands(rig: Rig) -> None:
    alice, bob = rig.repo(), rig.repo("bob.test")
    ops: list[Any] = [("create", t(rkey), rec) for rkey, (rec, _) in INVALID.items()]
    out = await rig.handle(
        alice.commit([("create", t(R1), track("good")), *ops, ("create", "fm.plyr.unknown/x", {"$type": "x"})]),
        bob.commit([("create", f"{LIKE}/{R3}", like(alice.uri(t(R1))))]),
    )
    assert out.last_seq == 2

    rows = await rig.rows("SELECT rkey, rejected, record IS NULL, verified FROM record_event WHERE did = %s "
                          "ORDER BY seq", alice.did)
    assert rows[0] == (R1, None, False, True)
    assert {r[0]: r[1] for r in rows[1:]} == {**{k: why for k, (_, why) in INVALID.items()},
                                              "x": "unknown collection"}
    # rejected records keep their body for inspection, except those jsonb cannot store
    assert {r[0] for r in rows if r[2]} == {"3kinvalidea22", "3kinvalidfa22", "3kinvalidga22"}
    assert all(r[3] for r in rows)
    assert await rig.records(bob.did) == [(LIKE, R3, "create", True, None)]

    await rig.project()
    assert await rig.rows("SELECT title FROM track") == [("good",)]
    assert await rig.rows('SELECT count(*) FROM "like"') == [(1,)]


# ---------------------------------------------------------------- hostile bytes


def _undecodable(raw: bytes, dids: set[str]) -> bool:
    for tracked in (frozenset(), frozenset(dids)):
        try:
            decode_frame(raw, tracked)
        except FrameError:
            continue
        return False
    return True


def _frame_errors(source: str) -> float:
    return REGISTRY.get_sample_value("ingest_frame_errors_total", {"source": source}) or 0.0


Garbage = bytes | float  # random bytes, or "cut a valid frame at this fraction of its length"


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    plan=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), min_size=1, max_size=8),
    garbage=st.lists(st.tuples(st.integers(0, 40), st.one_of(st.binary(max_size=200),
                                                              st.floats(0, 1, exclude_max=True))),
                     min_size=1, max_size=6),
)
def test_garbage_frames_never_escape_and_valid_frames_commit(
    db_url: str, plan: list[tuple[int, int]], garbage: list[tuple[int, Garbage]]
) -> None:
    """Random bytes and truncated frames mixed into a batch: handle() never raises, counts each bad
    frame, and every valid event of the batch is committed, with the cursor at the last valid seq."""
    net = Net()
    repos = [net.repo(f"r{i}.test") for i in range(3)]
    valid: list[bytes] = []
    expected: dict[str, list[tuple[str, str]]] = {r.did: [] for r in repos}
    states: dict[str, tuple[str, str, str]] = {}  # did → (did, rev, status) of tracked repos
    for who, n in plan:  # n creates in one commit; an empty commit only matters once a repo is tracked
        r = repos[who]
        first = r.rev is None
        rkeys = [tid(len(valid) * 1000 + i) for i in range(n)]
        valid.append(r.commit([("create", t(k), track(k)) for k in rkeys]))
        expected[r.did] += [(TRACK, k) for k in rkeys]
        if n or r.did in states:  # first sight after skipped empty commits is mid-chain
            status = states[r.did][2] if r.did in states else "synchronized" if first else "desynchronized"
            states[r.did] = (r.did, r.rev or "", status)
    batch = list(valid)
    for pos, g in garbage:
        if isinstance(g, bytes):
            raw = g
        else:
            victim = valid[pos % len(valid)]
            raw = victim[: int(g * len(victim))]
        assume(_undecodable(raw, set(expected)))
        batch.insert(pos % (len(batch) + 1), raw)
    source = f"firehose:fuzz-{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        async with await connect(db_url) as conn:
            resolver = net.resolver()
            ingest = Ingest(conn, source=source, resolver=resolver, verifier=SignatureVerifier(resolver),
                            validator=VALIDATOR)
            before = _frame_errors(source)
            out = (await ingest.handle(batch)).merge(await ingest.drain())
            await resolver.aclose()
            assert _frame_errors(source) - before == len(garbage)
            assert out.last_seq == seq_of(valid[-1])
            async with conn.cursor() as cur:
                for r in repos:
                    await cur.execute("SELECT collection, rkey FROM record_event WHERE did = %s AND verified "
                                      "ORDER BY seq", (r.did,))
                    assert await cur.fetchall() == expected[r.did]
                await cur.execute("SELECT did, rev, sync_status FROM repo_state WHERE did = ANY(%s)",
                                  ([r.did for r in repos],))
                assert sorted(await cur.fetchall()) == sorted(states.values())
                await cur.execute("SELECT cursor FROM source_cursor WHERE source = %s", (source,))
                assert await cur.fetchall() == [(seq_of(valid[-1]),)]

    asyncio.run(run())


async def test_a_batch_of_only_garbage_commits_nothing(rig: Rig) -> None:
    alice = rig.repo()
    valid = alice.commit([("create", t(R1), track())])
    out = await rig.handle(b"", b"\xff" * 10, valid[:-1], valid[: len(valid) // 2])
    assert out == BatchOutcome(errors=[], last_seq=None, appended=0)
    assert await rig.cursor() is None and await rig.records(alice.did) == []
    assert alice.did not in rig.repos
    # and the repo's chain was not advanced by the broken copies: the whole frame still lands
    await rig.handle(valid)
    assert await rig.records(alice.did) == [(TRACK, R1, "create", True, None)]


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


async def test_strings_postgres_cannot_store_never_poison_the_batch(rig: Rig) -> None:
    """U+0000 (and, from JSON, lone surrogates) cannot be stored in text/jsonb, and nesting past 255
    levels cannot be JSON-encoded: one such value must not fail the append of the whole batch (the
    source would retry that batch forever). Each is dropped at the narrowest scope instead."""
    alice, mallory = rig.repo(), rig.repo("mallory.test")
    did_doc = rig.resolver.docs[mallory.did]
    assert isinstance(did_doc, dict)
    # served as raw JSON: a "\\ud800" escape decodes to a lone surrogate, which no UTF-8 encoder accepts
    rig.resolver.docs[mallory.did] = json.dumps(did_doc).replace("https://pds.test", "https://x\\ud800").encode()
    first = alice.commit([("create", t(R1), track("one"))])
    frames = [
        first,
        alice.commit([("create", t("3kaaaaaaa\x00a2"), track())], advance=False),  # NUL in an rkey: frame dropped
        alice.commit([("create", t(R2), track())], since="3ka\x00", advance=False),  # NUL in since: dropped
        alice.identity(handle="evil\x00.test"),  # dropped
        alice.account(False, "takendown\x00"),  # dropped
        alice.commit([("create", t(R2), track()), ("create", t(R3), track(deep=_deep(300)))]),
        mallory.commit([("create", t(R1), track("pds url with a lone surrogate"))]),
    ]
    out = await rig.handle(*frames)

    assert out.last_seq == seq_of(frames[-1])
    rows = await rig.rows("SELECT rkey, rejected, record IS NULL FROM record_event WHERE did = %s ORDER BY seq",
                          alice.did)
    assert rows == [(R1, None, False), (R2, None, False), (R3, "record nested too deeply", True)]
    assert await rig.kinds(alice.did) == ["identity"]
    [(_, _, payload)] = await rig.repo_events(mallory.did)
    assert payload["pds"] is None and payload["handle"] == "mallory.test"  # the bad endpoint is ignored
    assert await rig.records(mallory.did) == [(TRACK, R1, "create", True, None)]


# ---------------------------------------------------------------- duplicates and replays


async def test_duplicates_and_redelivered_batches_log_once(rig: Rig) -> None:
    alice = rig.repo()
    c1 = alice.commit([("create", t(R1), track("one"))])
    c2 = alice.commit([("update", t(R1), track("two"))])
    c3 = alice.commit([("create", t(R2), track("three"))])
    acct = alice.account(False, "deactivated")
    await rig.handle(c1, c2, c1, c2)  # the same commits twice in one batch
    await rig.handle(c1, c2, c3, acct)  # the batch re-delivered after a reconnect, plus new frames
    await rig.handle(c3, acct)  # an inclusive replay of the tail
    # …and the same frames replayed to a restarted process (state loaded from repo_state)
    restarted = rig.new_ingest(shared=False)
    await restarted.load_tracked()
    await restarted.handle([c1, c2, c3, acct])
    # …and the same commits relayed by a second host (the chain state is per process, not per source)
    await rig.new_ingest("firehose:relay2.test").handle([c2, c3])

    assert await rig.records(alice.did) == [(TRACK, R1, "create", True, None), (TRACK, R1, "update", True, None),
                                            (TRACK, R2, "create", True, None)]
    assert await rig.kinds(alice.did) == ["identity", "account"]
    assert await rig.cursor() == seq_of(acct)
    assert await rig.cursor("firehose:relay2.test") == seq_of(c3)
    await rig.project()
    assert await rig.rows("SELECT title FROM track ORDER BY title") == [("three",), ("two",)]


async def test_failed_append_leaves_no_trace_and_the_retry_lands(rig: Rig, db_url: str) -> None:
    """A batch whose append fails for the infrastructure's sake (here: the log table stays locked past
    our lock timeout) is re-raised for the source to retry — never bisected, never a reject — and the
    retry must not look like a replay of commits that never committed."""
    alice = rig.repo()
    frames = [alice.commit([("create", t(R1), track())]), alice.commit([("create", t(R2), track())])]
    await rig.conn.execute("SET lock_timeout = '200ms'")
    await rig.conn.commit()
    async with await psycopg.AsyncConnection.connect(db_url) as blocker:
        await blocker.execute("LOCK TABLE record_event IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(psycopg.errors.LockNotAvailable):  # an OperationalError: transient
            await rig.handle(*frames)
        await blocker.rollback()
    await rig.conn.rollback()
    assert alice.did not in rig.repos
    assert await rig.rows("SELECT count(*) FROM frame_reject") == [(0,)]

    await rig.handle(*frames)
    assert [r[1] for r in await rig.records(alice.did)] == [R1, R2]
    assert await rig.cursor() == seq_of(frames[-1])


# ---------------------------------------------------------------- chain breaks


async def test_since_mismatch_marks_desync_and_keeps_the_records(rig: Rig) -> None:
    alice = rig.repo()
    c1 = alice.commit([("create", t(R1), track("one"))])
    skipped = alice.commit([("create", t(R2), track("never delivered"))])  # we miss this one
    c3 = alice.commit([("create", t(R3), track("three"))])  # since = skipped's rev, not c1's
    await rig.handle(c1, c3)

    assert await rig.records(alice.did) == [(TRACK, R1, "create", True, None), (TRACK, R3, "create", True, None)]
    reason = f"since {rev_of(skipped)} != last rev {rev_of(c1)}"
    assert await rig.state(alice.did) == (rev_of(c3), cid_str(alice.data or b""), "desynchronized", reason)
    assert [(k, rev, p) for k, rev, p in await rig.repo_events(alice.did) if k != "identity"] == [
        ("desync", rev_of(c3), {"reason": reason})]

    # a desynchronized repo stays so (until a resync): a well-chained commit keeps the reason…
    await rig.handle(alice.commit([("delete", t(R1), None)]))
    assert (await rig.state(alice.did) or ())[2:] == ("desynchronized", reason)
    # …another break records the newest reason, but the desync event marks only the transition
    last = alice.rev
    await rig.handle(alice.commit([], since="3jzzzzzzzzz22"))
    assert (await rig.state(alice.did) or ())[2:] == ("desynchronized", f"since 3jzzzzzzzzz22 != last rev {last}")
    assert (await rig.kinds(alice.did)).count("desync") == 1
    await rig.project()
    assert await rig.rows("SELECT title FROM track") == [("three",)]


async def test_prev_data_mismatch_across_a_restart_marks_desync(rig: Rig) -> None:
    alice = rig.repo()
    c1 = alice.commit([("create", t(R1), track("one"))])
    data1 = alice.data or b""
    await rig.handle(c1)
    assert (await rig.state(alice.did) or ())[2] == "synchronized"

    restarted = rig.new_ingest(shared=False)  # a new process: the chain comes from repo_state
    await restarted.load_tracked()
    bogus = cid_of(b"some other tree")
    c2 = alice.commit([("create", t(R2), track("two"))], prev_data=bogus)
    await restarted.handle([c2])

    reason = f"prevData {cid_str(bogus)} != last data {cid_str(data1)}"
    assert (await rig.state(alice.did) or ())[2:] == ("desynchronized", reason)
    assert await rig.records(alice.did) == [(TRACK, R1, "create", True, None), (TRACK, R2, "create", True, None)]
    assert "desync" in await rig.kinds(alice.did)


async def test_first_commit_seen_mid_chain_needs_backfill(rig: Rig) -> None:
    alice = rig.repo()
    alice.commit([("create", t(R1), track("before we were watching"))])
    await rig.handle(alice.commit([("create", t(R2), track("first seen"))]))
    assert (await rig.state(alice.did) or ())[2:] == ("desynchronized", "first seen mid-chain; needs backfill")
    assert "desync" not in await rig.kinds(alice.did)  # nothing was lost that we ever had
    assert await rig.records(alice.did) == [(TRACK, R2, "create", True, None)]


async def test_sync_frame(rig: Rig) -> None:
    alice, bob = rig.repo(), rig.repo("bob.test")
    await rig.handle(alice.commit([("create", t(R1), track())]), bob.commit([("create", t(R1), track())]))
    same = alice.sync()  # declares the data CID we already have: nothing to repair
    reset = bob.sync(data=cid_of(b"rewritten repo"))
    await rig.handle(same, reset)

    assert await rig.state(alice.did) == (rev_of(same), cid_str(alice.data or b""), "synchronized", None)
    assert "sync" not in await rig.kinds(alice.did)
    assert await rig.state(bob.did) == (rev_of(reset), cid_str(cid_of(b"rewritten repo")), "desynchronized",
                                        "#sync: repo state reset upstream")
    assert [(k, rev, p) for k, rev, p in await rig.repo_events(bob.did) if k == "sync"] == [
        ("sync", rev_of(reset), {"data_cid": cid_str(cid_of(b"rewritten repo"))})]
    # #sync for a repo we never tracked is ignored
    carol = rig.repo("carol.test")
    await rig.handle(carol.sync())
    assert await rig.state(carol.did) is None and await rig.kinds(carol.did) == []


# ---------------------------------------------------------------- identity, account, info, errors, cursor


async def test_account_and_identity_frames_for_tracked_repos_only(rig: Rig) -> None:
    alice, stranger = rig.repo(), rig.repo("stranger.test")
    await rig.handle(alice.commit([("create", t(R1), track())]))
    alice.handle = "alice2.test"
    rig.resolver.publish(alice)
    fetches = rig.resolver.fetches_by_did[alice.did]
    out = await rig.handle(alice.identity(), alice.account(False, "takendown"),
                           stranger.identity(), stranger.account(False, "deleted"))

    assert out.last_seq == 5
    events = await rig.repo_events(alice.did)
    assert [k for k, _, _ in events] == ["identity", "identity", "account"]
    assert events[1][2]["handle"] == "alice2.test" and events[1][2]["signing_key"] == alice.did_key
    assert events[2][2] == {"active": False, "status": "takendown"}
    assert rig.resolver.fetches_by_did[alice.did] == fetches + 1  # #identity forces a fresh DID doc
    assert await rig.repo_events(stranger.did) == [] and rig.resolver.fetches_by_did[stranger.did] == 0

    await rig.project()
    assert await rig.rows("SELECT did, handle, status, active FROM actor") == [
        (alice.did, "alice2.test", "takendown", False)]
    assert await rig.cursor() == 5


async def test_error_and_info_frames(rig: Rig) -> None:
    alice = rig.repo()
    c1 = alice.commit([("create", t(R1), track())])
    out = await rig.handle(info_frame(), c1, error_frame("FutureCursor", "cursor in the future"))
    assert [(e.error, e.message) for e in out.errors] == [("FutureCursor", "cursor in the future")]
    assert out.last_seq == seq_of(c1)
    assert await rig.records(alice.did) == [(TRACK, R1, "create", True, None)]
    assert await rig.cursor() == seq_of(c1)


async def test_cursor_is_committed_with_the_batch_and_counts_skipped_frames(rig: Rig) -> None:
    alice, other = rig.repo(), rig.repo("other.test")
    c1 = alice.commit([("create", t(R1), track())])
    out_of_scope = other.commit([("create", "app.bsky.feed.post/3kaaaaaaaaa22", {"text": "hi"})])
    out = await rig.handle(c1, out_of_scope, other.identity())
    assert out.last_seq == 3 and await rig.cursor() == 3
    assert await rig.records(other.did) == [] and await rig.state(other.did) is None
    # the cursor and the log rows of one batch are one transaction: both or neither
    assert await rig.rows("SELECT count(*) FROM record_event") == [(1,)]
    out = await rig.handle(other.account(True))  # untracked, out of scope: still moves the cursor
    assert out.appended == 0 and await rig.cursor() == 4


async def test_a_repo_first_seen_mid_batch_keeps_its_chain(rig: Rig) -> None:
    """A repo's first in-scope commit makes it tracked; its out-of-scope commits later in the *same*
    batch must still be followed (they carry the chain), or the next commit looks like a gap."""
    alice, bob = rig.repo("alice.test"), rig.repo("bob.test")
    first = alice.commit([("create", t(R1), track("one"))], since=None)
    elsewhere = alice.commit([("create", "app.bsky.feed.like/3kzzzzzzzzz22", {"$type": "app.bsky.feed.like"})])
    second = alice.commit([("create", t(R2), track("two"))])
    await rig.handle(first, bob.commit([("create", t(R1), track("bob"))], since=None), elsewhere, second)

    assert (await rig.state(alice.did) or ())[2] == "synchronized"
    assert "desync" not in await rig.kinds(alice.did)
    assert rig.resolver.fetches_by_did[alice.did] == 1 and rig.resolver.fetches_by_did[bob.did] == 1
