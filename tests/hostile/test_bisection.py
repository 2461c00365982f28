"""A batch that cannot commit: bisected down to the poison frame (a reject, the cursor past it) when the
frame is at fault; retried whole, never a reject, when the database is (real Postgres errors both)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.db.connect import connect
from ingester.pipeline.ingest import Ingest
from ingester.validate.records import RecordValidator
from ingester.verify.signature import SignatureVerifier
from tests.hostile.firehose_server import seq_of
from tests.ingester.framekit import Net, StaticResolver, track

SOURCE = "firehose:hostile.test"
VALIDATOR = RecordValidator()
TID = "3kaaaaaaaaa22"


class Rig:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.net = Net()
        self.resolver = StaticResolver()
        self.ingest = Ingest(conn, source=SOURCE, resolver=self.resolver, verifier=SignatureVerifier(self.resolver),
                             validator=VALIDATOR)

    def commit(self, rkey: str = TID, title: str = "song") -> bytes:
        """One commit by a repo of its own (so that setting one aside breaks no other repo's chain)."""
        repo = self.net.repo(f"u{len(self.net.repos)}.test")
        self.resolver.publish(repo)
        return repo.commit([("create", f"fm.plyr.track/{rkey}", track(title))])

    async def execute(self, sql: str) -> None:
        await self.ingest.conn.execute(sql)
        await self.ingest.conn.commit()

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = self.ingest.conn
        async with conn.cursor() as cur:
            await cur.execute(sql, params)
            out = await cur.fetchall()
        await conn.commit()
        return out


@pytest.fixture
async def rig(conn: psycopg.AsyncConnection) -> AsyncIterator[Rig]:
    r = Rig(conn)
    yield r
    await r.resolver.aclose()


async def test_poison_frame_is_bisected_out_and_the_rest_lands(rig: Rig) -> None:
    # A value Postgres refuses for one row only: a real IntegrityError, the frame's fault, not the database's.
    await rig.execute("ALTER TABLE record_event ADD CONSTRAINT no_poison "
                      "CHECK (record->>'title' <> 'poison') NOT VALID")
    frames = [rig.commit(title=f"t{i}") for i in range(3)] + [rig.commit(title="poison")] + [
        rig.commit(title=f"t{i}") for i in range(3, 7)]

    out = await rig.ingest.handle(frames)
    out = out.merge(await rig.ingest.drain())  # first-seen repos wait for their identity (per-repo scheduling)

    assert out.last_seq == seq_of(frames[-1])
    assert sorted(t for (t,) in await rig.rows("SELECT record->>'title' FROM record_event")) == [
        f"t{i}" for i in range(7)]
    rejects = await rig.rows("SELECT source, source_seq, reason_kind, reason, size FROM frame_reject")
    assert len(rejects) == 1
    source, seq, kind, reason, size = rejects[0]
    assert (source, seq, kind, size) == (SOURCE, seq_of(frames[3]), "poison", len(frames[3]))
    assert "CheckViolation" in reason and "no_poison" in reason
    assert await rig.rows("SELECT cursor FROM source_cursor") == [(seq_of(frames[-1]),)]


async def test_database_gone_is_retried_not_rejected(rig: Rig, db_url: str) -> None:
    frames = [rig.commit(title=f"t{i}") for i in range(4)]
    conn = rig.ingest.conn
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    with pytest.raises(psycopg.OperationalError):  # the source retries this with backoff
        await rig.ingest.handle(frames)
    rig.ingest.conn = await connect(db_url)  # as the service's handler does for a broken connection
    try:
        assert await rig.rows("SELECT count(*) FROM frame_reject") == [(0,)]
        out = await rig.ingest.handle(frames)  # the retry: nothing was judged a duplicate by the failed try
        assert out.last_seq == seq_of(frames[-1])
        assert await rig.rows("SELECT count(*) FROM record_event") == [(4,)]
        assert await rig.rows("SELECT count(*) FROM frame_reject") == [(0,)]
    finally:
        await rig.ingest.conn.close()


junk = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda n, b: b"\xa2bopa1" + b * n, st.integers(0, 50), st.binary(min_size=1, max_size=4)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), junk, st.integers(0, 3)), min_size=1, max_size=8),
       st.integers(1, 5))
async def test_random_bytes_between_valid_frames(rig: Rig, plan: list[tuple[bool, bytes, int]], batch: int) -> None:
    """Any junk, anywhere, in any batch split: every valid frame is applied, nothing escapes, the cursor
    never goes back."""
    stream: list[bytes] = []
    valid: list[tuple[int, str]] = []  # (seq, title)
    for is_valid, garbage, cut in plan:
        if not is_valid:
            stream.append(garbage)
        title = f"v{len(rig.net.repos)}"
        frame = rig.commit(title=title)
        if cut:  # a valid frame cut short first
            stream.append(frame[: len(frame) * cut // 4])
        stream.append(frame)
        valid.append((seq_of(frame) or 0, title))
    before = await rig.rows("SELECT cursor FROM source_cursor")
    for i in range(0, len(stream), batch):
        await rig.ingest.handle(stream[i:i + batch])  # never raises
        after = await rig.rows("SELECT cursor FROM source_cursor")
        assert not before or after[0][0] >= before[0][0]  # monotone
        before = after
    await rig.ingest.drain()  # first-seen repos wait for their identity (per-repo scheduling)
    before = await rig.rows("SELECT cursor FROM source_cursor")
    titles = {t for (t,) in await rig.rows("SELECT record->>'title' FROM record_event")}
    assert {t for _, t in valid} <= titles
    assert before == [(max(s for s, _ in valid),)]
