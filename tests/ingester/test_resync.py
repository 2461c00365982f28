"""`#sync` and the live pipeline's hand-over to resync: enrolment, held commits, replay, deletes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from core.db.connect import connect
from ingester.backfill.worker import Backfiller
from ingester.pipeline.gate import ResyncGate
from ingester.pipeline.ingest import Ingest
from ingester.projection.runner import Projector
from ingester.sources.repos import FetchError, RepoFetcher
from ingester.validate.records import RecordValidator
from ingester.verify.chain import ChainState
from ingester.verify.signature import SignatureVerifier
from tests.ingester.framekit import Mst, Net, Repo, car, cid_of, record_block, track

VALIDATOR = RecordValidator()


async def handle(ingest: Ingest, frames: list[bytes]) -> None:
    await ingest.handle(frames)
    await ingest.drain()
SOURCE = "firehose:relay.test"
T = "fm.plyr.track/"


def current_snapshot(repo: Repo, records: dict[str, dict[str, Any]]) -> bytes:
    """What getRepo returns right now: the repo's latest signed commit and its whole tree."""
    blocks = {p: record_block(r) for p, r in records.items()}
    mst = Mst({p: cid_of(b) for p, b in blocks.items()})
    assert repo.rev is not None and mst.root == repo.data
    ccid, cblock = repo._commit_block(repo.rev, mst.root, None)
    return car([ccid], [(ccid, cblock), *mst.blocks.items(), *((cid_of(b), b) for b in blocks.values())])


class ScriptedFetcher(RepoFetcher):
    def __init__(self, serve: Callable[[str], Awaitable[bytes]]) -> None:
        super().__init__()
        self.serve = serve

    async def get_repo(self, pds: str, did: str) -> bytes:
        return await self.serve(did)


@pytest.mark.parametrize("buffer_live", [False, True], ids=["log-at-once", "buffered"])
async def test_sync_resets_through_resync_with_deletes_and_held_commits(conn: psycopg.AsyncConnection,
                                                                        db_url: str, buffer_live: bool) -> None:
    net = Net()
    alice = net.repo("alice.test")
    resolver = net.resolver()
    verifier = SignatureVerifier(resolver)
    gate, repos = ResyncGate(buffer_live=buffer_live), dict[str, ChainState]()
    ingest = Ingest(conn, source=SOURCE, resolver=resolver, verifier=verifier, validator=VALIDATOR,
                    repos=repos, gate=gate)
    records: dict[str, dict[str, Any]] = {}

    def write(action: str, rkey: str, title: str | None = None) -> bytes:
        path = T + rkey
        if action == "delete":
            records.pop(path)
            return alice.commit([("delete", path, None)])
        records[path] = track(title or rkey)
        return alice.commit([(action, path, records[path])])  # type: ignore[list-item]

    await handle(ingest, [write("create", "3kaaaaaaaaa22", "one"), write("create", "3kaaaaaaaab22", "two")])
    assert repos[alice.did].sync_status == "synchronized"

    async def serve(did: str) -> bytes:
        snapshot = current_snapshot(alice, records)
        # a live commit arrives while the snapshot is in flight: held, then replayed on top of it
        await handle(ingest, [write("create", "3kaaaaaaaad22", "four")])
        return snapshot

    backfiller = Backfiller(db_url, resolver=resolver, verifier=verifier, validator=VALIDATOR,
                            fetcher=ScriptedFetcher(serve), gate=gate, repos=repos)

    # Upstream resets the repo (one record gone, one new, one edited) and says so with #sync.
    records.pop(T + "3kaaaaaaaaa22")
    records[T + "3kaaaaaaaab22"] = track("two (restored)")
    records[T + "3kaaaaaaaac22"] = track("three")
    alice.cids = {p: cid_of(record_block(r)) for p, r in records.items()}
    alice.mst = Mst(alice.cids)
    await handle(ingest, [alice.sync(data=alice.mst.root)])
    assert repos[alice.did].sync_status == "desynchronized" and backfiller.queued == 1  # enrolled

    async with await connect(db_url) as work:
        outcome = await backfiller.backfill(work, alice.did)
        assert outcome.ok and outcome.changes == 3
        await Projector().catch_up(work)
    assert repos[alice.did] == ChainState(alice.rev, repos[alice.did].data_cid, "synchronized")

    async with conn.cursor() as cur:
        await cur.execute("SELECT title FROM track ORDER BY title")
        assert [r[0] for r in await cur.fetchall()] == ["four", "three", "two (restored)"]
        await cur.execute("SELECT rkey, action, source FROM record_event WHERE source = 'backfill' ORDER BY rkey")
        assert await cur.fetchall() == [("3kaaaaaaaaa22", "delete", "backfill"),
                                        ("3kaaaaaaaab22", "update", "backfill"),
                                        ("3kaaaaaaaac22", "create", "backfill")]
        await cur.execute("SELECT source FROM record_event WHERE rkey = '3kaaaaaaaad22'")
        assert await cur.fetchall() == [(SOURCE,)]  # the held commit, logged under its own source
        await cur.execute("SELECT sync_status, rev FROM repo_state")
        assert await cur.fetchall() == [("synchronized", alice.rev)]
        await cur.execute("SELECT status, changes FROM backfill_job")
        assert await cur.fetchall() == [("done", 3)]


@pytest.mark.parametrize("buffer_live", [False, True], ids=["log-at-once", "buffered"])
async def test_a_failed_resync_logs_the_held_commits_as_they_are(conn: psycopg.AsyncConnection, db_url: str,
                                                                 buffer_live: bool) -> None:
    net = Net()
    bob = net.repo("bob.test")
    resolver = net.resolver()
    verifier = SignatureVerifier(resolver)
    gate, repos = ResyncGate(buffer_live=buffer_live), dict[str, ChainState]()
    ingest = Ingest(conn, source=SOURCE, resolver=resolver, verifier=verifier, validator=VALIDATOR,
                    repos=repos, gate=gate)
    await handle(ingest, [bob.commit([("create", T + "3kaaaaaaaaa22", track("one"))])])

    async def serve(did: str) -> bytes:
        await handle(ingest, [bob.commit([("create", T + "3kaaaaaaaab22", track("two"))])])
        raise FetchError("RepoTakendown")

    backfiller = Backfiller(db_url, resolver=resolver, verifier=verifier, validator=VALIDATOR,
                            fetcher=ScriptedFetcher(serve), gate=gate, repos=repos)
    async with await connect(db_url) as work:
        outcome = await backfiller.backfill(work, bob.did)
    assert not outcome.ok and outcome.reason == "getRepo: RepoTakendown"
    assert not gate.resyncing(bob.did)
    async with conn.cursor() as cur:
        await cur.execute("SELECT rkey FROM record_event ORDER BY seq")
        assert [r[0] for r in await cur.fetchall()] == ["3kaaaaaaaaa22", "3kaaaaaaaab22"]  # nothing lost
        await cur.execute("SELECT sync_status FROM repo_state")
        assert await cur.fetchall() == [("desynchronized",)]
        await cur.execute("SELECT status, error, attempts FROM backfill_job")
        # not active: it waits for its account's reactivation rather than for retries
        assert await cur.fetchall() == [("waiting", "getRepo: RepoTakendown", 1)]


@pytest.mark.parametrize("buffer_live", [False, True], ids=["log-at-once", "buffered"])
async def test_a_held_commit_that_does_not_stack_triggers_another_resync(conn: psycopg.AsyncConnection,
                                                                         db_url: str, buffer_live: bool) -> None:
    net = Net()
    carol = net.repo("carol.test")
    resolver = net.resolver()
    verifier = SignatureVerifier(resolver)
    gate, repos = ResyncGate(buffer_live=buffer_live), dict[str, ChainState]()
    ingest = Ingest(conn, source=SOURCE, resolver=resolver, verifier=verifier, validator=VALIDATOR,
                    repos=repos, gate=gate)
    records = {T + "3kaaaaaaaaa22": track("one")}
    await handle(ingest, [carol.commit([("create", T + "3kaaaaaaaaa22", records[T + "3kaaaaaaaaa22"])])])
    served = 0

    async def serve(did: str) -> bytes:
        nonlocal served
        served += 1
        snapshot = current_snapshot(carol, records)
        if served == 1:  # a commit whose `since` skips one we never got: a gap right after the snapshot
            carol.commit([("create", T + "3kaaaaaaaab22", track("lost"))])
            records[T + "3kaaaaaaaab22"] = track("lost")
            records[T + "3kaaaaaaaac22"] = track("three")
            await handle(ingest, [carol.commit([("create", T + "3kaaaaaaaac22", records[T + "3kaaaaaaaac22"])])])
        return snapshot

    backfiller = Backfiller(db_url, resolver=resolver, verifier=verifier, validator=VALIDATOR,
                            fetcher=ScriptedFetcher(serve), gate=gate, repos=repos, concurrency=2)
    backfiller.submit(carol.did, "test")
    counters = await backfiller.run(asyncio.Event(), until_idle=True)
    assert (served, counters.done, counters.failed) == (2, 2, 0)  # the gap made it run again
    assert repos[carol.did].sync_status == "synchronized" and repos[carol.did].rev == carol.rev
    async with await connect(db_url) as work:
        await Projector().catch_up(work)
        cur = await work.execute("SELECT title FROM track ORDER BY title")
        assert [r[0] for r in await cur.fetchall()] == ["lost", "one", "three"]
