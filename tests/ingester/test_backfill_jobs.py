"""The job table: discovery skips repos already known, a crash leaves `running` jobs that run again, failed
jobs are retried until their attempts run out, and desynchronized repos are picked up after a restart."""

from __future__ import annotations

import psycopg

from ingester.backfill import jobs
from ingester.backfill.worker import Backfiller
from ingester.sources.repos import RepoFetcher
from ingester.validate.records import RecordValidator
from ingester.verify.signature import SignatureVerifier
from tests.ingester.framekit import StaticResolver

A, B, C, D = (f"did:plc:{c * 24}" for c in "abcd")


async def test_jobs_resume_and_skip_what_is_done(conn: psycopg.AsyncConnection, db_url: str) -> None:
    assert await jobs.enqueue(conn, [A, B, C, A], "listRepos pds") == 3
    await jobs.started(conn, A, None)  # then the process dies: A stays `running`
    await jobs.started(conn, B, None)
    async with conn.transaction(), conn.cursor() as cur:
        await jobs.done(cur, B, "https://pds", "3kaaaaaaaaa22", 4, 4)
    await jobs.started(conn, C, None)
    await jobs.failed(conn, C, "getRepo: timeout after 1s", "https://pds")

    assert await jobs.enqueue(conn, [A, B, C], "listRepos pds") == 0  # rediscovery adds nothing
    assert await jobs.runnable(conn, retry_failed=True, max_attempts=5) == [A, C]
    assert await jobs.runnable(conn, retry_failed=True, max_attempts=1) == [A]
    assert await jobs.runnable(conn, retry_failed=False, max_attempts=5) == [A]

    # a desynchronized repo resets its job even when done
    async with conn.cursor() as cur:
        await cur.execute("INSERT INTO repo_state (did, rev, sync_status, desync_reason) VALUES"
                          " (%s, 'r', 'desynchronized', 'since x != last rev y'),"
                          " (%s, 'r', 'desynchronized', 'gap'), (%s, 'r', 'synchronized', NULL)", (B, C, D))
    await conn.commit()
    assert sorted(await jobs.desynchronized(conn, max_attempts=1)) == [(B, "since x != last rev y")]
    assert await jobs.enqueue(conn, [B], "resync: gap", reset=True) == 1
    assert await jobs.status_of(conn, B) == "pending"

    resolver = StaticResolver()
    bf = Backfiller(db_url, resolver=resolver, verifier=SignatureVerifier(resolver), validator=RecordValidator(),
                    fetcher=RepoFetcher())
    assert await bf.load(conn, max_attempts=5) == 3  # B (desynchronized), A (interrupted), C (failed once)
    bf.submit(A)  # already queued: not twice
    assert bf.queued == 3
    await bf.fetcher.aclose()
