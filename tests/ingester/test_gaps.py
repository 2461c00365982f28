"""Gaps close themselves: an outdated cursor enqueues the resyncs it calls for (durably, deduplicated, before
anything past it is committed), and an inactive account's records are fetched when it is active again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appview.status import read_backfill
from core.db.connect import connect
from ingester.backfill import jobs
from ingester.backfill.gaps import Gaps, netloc, record_gap, repos_behind
from ingester.eventlog.append import append_batch
from ingester.pipeline.ingest import Ingest
from ingester.pipeline.jetstream import JetstreamIngest
from ingester.sources.repos import ListedRepo, RepoFetcher
from ingester.validate.records import RecordValidator
from ingester.verify.signature import SignatureVerifier
from tests.ingester import events as ev
from tests.ingester.framekit import Net, StaticResolver, info_frame, seq_of, track

A, B, C = (f"did:plc:{c * 24}" for c in "abc")
TRACK = "fm.plyr.track"


async def rows(conn: psycopg.AsyncConnection, sql: str, *params: object) -> list[tuple[object, ...]]:
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        out = await cur.fetchall()
    await conn.commit()
    return out


async def tracked_world(conn: psycopg.AsyncConnection) -> None:
    """A and B have records in the log; A is known to live on pds-a.test, C only on pds-a.test (not tracked)."""
    await append_batch(conn, [ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000001a", ev.track()),
                              ev.put(B, TRACK, "3kaaaaaaaaa22", "3k0000000001a", ev.track())])
    await jobs.enqueue(conn, [A, C], "listRepos")
    await jobs.failed(conn, A, "getRepo: timeout", "https://pds-a.test")
    await jobs.failed(conn, C, "getRepo: timeout", "https://PDS-A.test:443/")


async def test_a_relay_gap_resyncs_every_tracked_repo_and_a_pds_gap_those_it_hosts(
        conn: psycopg.AsyncConnection) -> None:
    await tracked_world(conn)
    assert await repos_behind(conn, None) == [A, B]  # Jetstream: an aggregator
    assert await repos_behind(conn, "wss://relay.test") == [A, B]  # hosts none of ours: a relay
    assert await repos_behind(conn, "wss://pds-a.test") == [A]  # C is hosted there but not tracked
    assert await repos_behind(conn, "pds-a.test:443") == []  # another netloc: hosts C only (untracked)

    gap = await record_gap(conn, "firehose:pds-a.test", "OutdatedCursor: x", host="wss://pds-a.test", cursor=7)
    assert (gap.repos, gap.dids) == (1, (A,))
    assert await rows(conn, "SELECT did, status, reason FROM backfill_job ORDER BY did") == [
        (A, "pending", "gap:firehose:pds-a.test"), (C, "failed", "listRepos")]


async def test_gaps_are_deduplicated_running_jobs_left_alone_and_listed_in_status(
        conn: psycopg.AsyncConnection) -> None:
    await tracked_world(conn)
    await jobs.started(conn, B, None)
    first = await record_gap(conn, "jetstream-v2:js.test", "CursorTooOld: 1", host=None, cursor=1)
    assert first.repos == 1  # A reset; B is running (its snapshot is fetched after the gap anyway)
    again = await record_gap(conn, "jetstream-v2:js.test", "CursorTooOld: 2", host=None, cursor=2)
    assert again.repos == 1
    assert await rows(conn, "SELECT did, status FROM backfill_job WHERE reason LIKE 'gap:%%'") == [(A, "pending")]
    status = await read_backfill(conn)
    assert status.open_by_reason == {"gap:jetstream-v2:js.test": 1, "listRepos": 1, "direct": 1}


async def test_a_gap_owes_one_rediscovery_when_discovery_is_configured(db_url: str,
                                                                       conn: psycopg.AsyncConnection) -> None:
    listed: list[str] = []

    class Lister(RepoFetcher):
        async def list_repos(self, host: str, limit: int = 1000) -> AsyncIterator[ListedRepo]:
            listed.append(host)
            yield ListedRepo(C, None, True)
            yield ListedRepo(A, None, False, "deactivated")

    store = Gaps(db_url, Lister(), pds_hosts=["https://pds.test"])
    await store.step(conn)
    assert listed == [] and not store.wake.is_set()  # nothing owed: discovery on start is the service's
    await store.gap("firehose:relay.test", "OutdatedCursor: x", host="wss://relay.test", cursor=None)
    assert store.wake.is_set()
    await store.pause(asyncio.Event(), 60)  # returns at once: woken
    await store.step(conn)
    await store.step(conn)
    assert listed == ["https://pds.test"]
    assert await rows(conn, "SELECT did, status, reason FROM backfill_job ORDER BY did") == [
        (A, "waiting", "listRepos https://pds.test: account deactivated"), (C, "pending", "listRepos https://pds.test")]
    assert store.unfetched == {A}
    await store.fetcher.aclose()


async def test_a_hostile_gap_report_is_truncated_not_fatal(conn: psycopg.AsyncConnection) -> None:
    await tracked_world(conn)
    gap = await record_gap(conn, "firehose:x", "OutdatedCursor: " + "\u00e9" * 1_000_000, host="wss://[::1",
                           cursor=None)
    assert len(gap.reason) == 500 and gap.dids == (A, B)


@given(st.text())
def test_netloc_never_raises(url: str) -> None:
    assert isinstance(netloc(url), str)


# ---------------------------------------------------------------- the firehose pipeline's hook


@pytest.fixture
async def ingest(conn: psycopg.AsyncConnection) -> AsyncIterator[Ingest]:
    resolver = StaticResolver()
    yield Ingest(conn, source="firehose:pds.test", resolver=resolver, verifier=SignatureVerifier(resolver),
                 validator=RecordValidator())
    await resolver.aclose()


async def test_the_gap_is_recorded_before_the_batch_past_it_commits(db_url: str, ingest: Ingest) -> None:
    net = Net()
    alice = net.repo()
    ingest.resolver.publish(alice)  # type: ignore[attr-defined]
    await ingest.handle([alice.commit([("create", f"{TRACK}/3kaaaaaaaaa22", track())])])
    await ingest.drain()  # a first-seen repo waits for its identity (per-repo scheduling)
    seen: list[tuple[str, str, list[tuple[object, ...]]]] = []
    gap_store = Gaps(db_url, RepoFetcher())

    async def hook(source: str, why: str) -> None:
        async with await connect(db_url) as other:  # what a crash right now would leave behind
            seen.append((source, why, await rows(other, "SELECT cursor FROM source_cursor")))
        await gap_store.gap(source, why, host="wss://pds.test", cursor=1)

    ingest.on_gap = hook
    later = alice.commit([("create", f"{TRACK}/3kbbbbbbbbb22", track())])
    out = await ingest.handle([info_frame("OutdatedCursor", "Requested cursor exceeded limit"), later])
    assert seen == [("firehose:pds.test", "OutdatedCursor: Requested cursor exceeded limit", [(1,)])]
    assert out.last_seq == seq_of(later)
    assert await rows(ingest.conn, "SELECT did, status, reason FROM backfill_job") == [
        (alice.did, "pending", "gap:firehose:pds.test")]
    # other #info frames are only logged
    await ingest.handle([info_frame("SomethingNew", None)])
    assert len(seen) == 1
    await gap_store.fetcher.aclose()


# ---------------------------------------------------------------- inactive accounts


async def test_inactive_accounts_wait_and_a_listing_showing_them_active_releases_them(
        conn: psycopg.AsyncConnection) -> None:
    assert await jobs.enqueue(conn, [A], "listRepos pds: account deactivated", status="waiting") == 1
    assert await jobs.runnable(conn, retry_failed=True, max_attempts=5) == []
    assert await jobs.enqueue(conn, [A, B], "listRepos pds: active again", reactivate=True) == 2
    assert await rows(conn, "SELECT did, status FROM backfill_job ORDER BY did") == [(A, "pending"), (B, "pending")]
    # a getRepo refused because the account is not active waits too, instead of burning its attempts
    await jobs.started(conn, A, None)
    await jobs.failed(conn, A, "getRepo: RepoDeactivated", "https://pds.test")
    await jobs.failed(conn, B, "getRepo: timeout", "https://pds.test")
    assert await rows(conn, "SELECT did, status FROM backfill_job ORDER BY did") == [(A, "waiting"), (B, "failed")]
    assert sorted(await jobs.unfetched(conn)) == [A, B]


async def test_reactivation_submits_a_resync_once_for_repos_never_fetched(conn: psycopg.AsyncConnection,
                                                                         db_url: str) -> None:
    await jobs.enqueue(conn, [A], "listRepos pds: account deactivated", status="waiting")
    submitted: list[tuple[str, str | None]] = []
    store = Gaps(db_url, RepoFetcher(), submit=lambda d, r: submitted.append((d, r)))
    store.reactivated(A)  # before the first load: judged once it is loaded
    assert submitted == []
    await store.step(conn)
    assert submitted == [(A, "reactivated: #account active")]
    await jobs.started(conn, A, None)
    await jobs.failed(conn, A, "getRepo: RepoDeactivated", None)  # deactivated again before we got it
    await store.step(conn)
    submitted.clear()
    for did in (A, B, A):  # B: never heard of, nothing to fetch; A again: already on its way
        store.reactivated(did)
    assert submitted == [(A, "reactivated: #account active")]
    store.note(B, ok=False)  # a resync that failed waits for the next reactivation too
    store.reactivated(B)
    assert submitted[-1] == (B, "reactivated: #account active")
    await store.fetcher.aclose()


# ---------------------------------------------------------------- both pipelines call the hooks


async def test_both_pipelines_report_outdated_cursors_and_every_active_account(conn: psycopg.AsyncConnection,
                                                                              ingest: Ingest) -> None:
    net = Net()
    stranger = net.repo("stranger.test")  # never tracked: its reactivation still counts
    gaps_seen: list[tuple[str, str]] = []
    active: list[str] = []

    async def on_gap(source: str, why: str) -> None:
        gaps_seen.append((source, why))

    resolver = StaticResolver()
    jet = JetstreamIngest(conn, source="jetstream-v2:js.test", version="v2", resolver=resolver,
                          validator=RecordValidator())
    for pipeline in (ingest, jet):
        pipeline.on_gap, pipeline.on_active = on_gap, active.append
    await ingest.handle([stranger.account(False, "deactivated"), stranger.account(True)])
    info = (b'{"$type":"message","payload":{"$type":"network.bsky.jetstream.subscribeEvents#info",'
            b'"name":"OutdatedCursor","message":"cursor older than the archive"}}')
    account = orjson.dumps({"$type": "message", "payload": {
        "$type": "network.bsky.jetstream.subscribeEvents#account", "seq": 9, "did": stranger.did,
        "time": "2026-11-24T12:00:00.000Z", "account": {"did": stranger.did, "active": True, "seq": 3,
                                                         "time": "2026-11-24T12:00:00.000Z"}}})
    await jet.handle([info, account])
    assert gaps_seen == [("jetstream-v2:js.test", "OutdatedCursor: cursor older than the archive")]
    assert active == [stranger.did, stranger.did]
    await resolver.aclose()
