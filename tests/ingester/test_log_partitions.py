"""record_event partitioned by seq range (migration 0016): the conversion of a populated log, partitions
made ahead of need across boundaries, retention trims and what they do to the stream and to rebuilds."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from core.db.connect import connect
from core.db.migrate import upgrade
from core.events import RecordEvent, RepoEvent
from ingester.eventlog.append import append_batch
from ingester.eventlog.partitions import set_partition_size
from ingester.eventlog.retention import trim_log
from ingester.projection.digest import digest
from ingester.projection.rebuild import TrimmedLog, rebuild
from ingester.projection.runner import Projector
from tests.appview.stream_kit import read_frames, serve, stream_app, subscribe
from tests.ingester.events import account, delete, identity, like, put, track
from tests.ingester.framekit import tid

DID = [f"did:plc:{c * 24}" for c in "abcdef"]
T = 1_764_000_000_000_000


def workload(n: int, start: int = 0) -> list[RecordEvent | RepoEvent]:
    """Tracks, likes of them, updates and deletes, identities: everything the projector folds."""
    out: list[RecordEvent | RepoEvent] = []
    for i in range(start, start + n):
        did = DID[i % len(DID)]
        rev = tid(T + i * 1000)
        kind = i % 5
        if kind == 0:
            out.append(identity(did, f"user{i % len(DID)}.test"))
        elif kind == 4 and i >= 10:
            out.append(delete(did, "fm.plyr.track", f"t{i - 9}", rev))
        elif kind == 3:
            out.append(put(did, "fm.plyr.like", f"l{i}", rev, like(f"at://{DID[0]}/fm.plyr.track/t1")))
        else:
            out.append(put(did, "fm.plyr.track", f"t{i}", rev, track(f"song {i}")))
    return out


async def _old_append(conn: psycopg.AsyncConnection, events: Sequence[RecordEvent | RepoEvent]) -> None:
    """What the append did before 0016: one row per event, the dedup key as partial unique indexes."""
    async with conn.transaction(), conn.cursor() as cur:
        for e in events:
            if isinstance(e, RecordEvent):
                await cur.execute(
                    "INSERT INTO record_event (did, collection, rkey, rev, action, cid, record, source, source_seq,"
                    " verified, rejected) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (e.did, e.collection, e.rkey, e.rev, e.action, e.cid,
                     None if e.record is None else Jsonb(e.record), e.source, e.source_seq, e.verified, e.rejected))
            else:
                await cur.execute("INSERT INTO repo_event (did, kind, rev, payload, source) VALUES (%s, %s, %s, %s, %s)",
                                  (e.did, e.kind, e.rev, Jsonb(e.payload), e.source))


async def _log(conn: psycopg.AsyncConnection) -> list[tuple[Any, ...]]:
    cur = await conn.execute("SELECT * FROM record_event ORDER BY seq")
    return await cur.fetchall()


async def _misplaced(conn: psycopg.AsyncConnection) -> int:
    """Rows outside their partition's registered range (must be none) plus registry gaps."""
    cur = await conn.execute("""
        SELECT count(*) FROM record_event e JOIN pg_class c ON c.oid = e.tableoid
        LEFT JOIN log_partition p ON p.name = c.relname WHERE p.name IS NULL OR e.seq < p.lo OR e.seq >= p.hi""")
    bad = int((await cur.fetchone())[0])  # type: ignore[index]
    cur = await conn.execute("SELECT lo, hi FROM log_partition ORDER BY lo")
    ranges = await cur.fetchall()
    return bad + sum(1 for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False) if hi != lo)


async def test_migration_converts_a_populated_log(empty_db: str) -> None:
    upgrade(empty_db, "0014")
    events = workload(120)
    async with await connect(empty_db) as conn:
        await _old_append(conn, events)
        await _old_append(conn, [e for e in events[:30] if isinstance(e, RecordEvent)])  # replays: absorbed
        # Not projected here: today's projector writes tables later migrations add (0017's counters).
        await conn.commit()
        before = await _log(conn)
        cur = await conn.execute("SELECT last_value FROM event_seq")
        seq_before = (await cur.fetchone())[0]  # type: ignore[index]
        await conn.commit()
    assert len(before) == sum(isinstance(e, RecordEvent) for e in events)

    upgrade(empty_db)
    async with await connect(empty_db) as conn:
        assert await _log(conn) == before  # every row, every column, in seq order
        cur = await conn.execute("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'record_event'::regclass")
        assert (await cur.fetchone())[0] == 1  # type: ignore[index]
        cur = await conn.execute("SELECT count(*) FROM record_event_key")
        assert (await cur.fetchone())[0] == len(before)  # type: ignore[index]
        assert await _misplaced(conn) == 0
        # The dedup key survived: the whole log replayed again appends nothing.
        again = await append_batch(conn, [e for e in events if isinstance(e, RecordEvent)])
        assert (again.records, again.duplicates) == (0, len(before))
        # Appends continue after the old head, through the same sequence.
        more = await append_batch(conn, workload(40, start=120))
        assert more.head is not None and more.head > seq_before
        after = await _log(conn)
        assert after[:len(before)] == before and [r[0] for r in after] == sorted(r[0] for r in after)
        # The projections folded from the converted log equal a clean rebuild.
        await Projector(batch_size=50, lock=False).catch_up(conn)
        await conn.commit()
        live = await digest(conn)
    await rebuild(empty_db, show_progress=False)
    async with await connect(empty_db) as conn:
        assert await digest(conn) == live


async def test_partitions_are_made_ahead_across_boundaries(db_url: str) -> None:
    async with await connect(db_url, autocommit=True) as conn:
        await set_partition_size(conn, 10)
        await conn.execute("SELECT setval('event_seq', 10000000 - 25)")  # 25 seqs below the first bound
        start, appended = 0, 0
        for size in (7, 3, 12, 1, 35, 9, 2):  # batches that end inside, at and across several bounds
            result = await append_batch(conn, workload(size, start))
            appended += result.records
            start += size
            cur = await conn.execute("SELECT max(hi) FROM log_partition")
            top = (await cur.fetchone())[0]  # type: ignore[index]
            assert result.head is None or top > result.head + 5  # always half a partition ahead
        rows = await _log(conn)
        assert len(rows) == appended and await _misplaced(conn) == 0
        cur = await conn.execute("SELECT count(*) FROM log_partition WHERE hi - lo = 10")
        assert (await cur.fetchone())[0] >= 5  # type: ignore[index]
        # A duplicate of the first batch landing after the bounds moved is still a duplicate.
        dup = await append_batch(conn, [e for e in workload(7) if isinstance(e, RecordEvent)])
        assert dup.records == 0


async def test_absurd_seq_jump_is_bridged_by_one_partition(db_url: str) -> None:
    async with await connect(db_url, autocommit=True) as conn:
        await set_partition_size(conn, 1000)
        await conn.execute("SELECT setval('event_seq', 1000000000000000)")  # a sequence set by hand, far ahead
        result = await append_batch(conn, workload(6))
        assert result.records > 0
        cur = await conn.execute("SELECT count(*) FROM log_partition")
        assert (await cur.fetchone())[0] <= 4  # type: ignore[index]
        assert await _misplaced(conn) == 0


@pytest.mark.parametrize("value", ["0", "-5", "1", "ten", "1e3"])
def test_partition_size_out_of_range_exits_2(value: str, tmp_path: Any) -> None:
    env = {**os.environ, "LOG_PARTITION_SIZE": value, "APPVIEW_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "cli", "migrate"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and f"invalid setting LOG_PARTITION_SIZE='{value}'" in out.stderr


@pytest.mark.parametrize("value", ["1s", "30", "forever", "-3d", "9999999d"])
def test_retention_out_of_range_exits_2(value: str, tmp_path: Any) -> None:
    env = {**os.environ, "LOG_RETENTION": value, "APPVIEW_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "cli", "migrate"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "invalid setting LOG_RETENTION=" in out.stderr


async def _trimmed_world(db_url: str) -> dict[str, Any]:
    """Partitions of 10 seqs from 10,000,000; everything below 10,000,020 arrived 10 days ago."""
    async with await connect(db_url, autocommit=True) as conn:
        await set_partition_size(conn, 10)
        await conn.execute("SELECT setval('event_seq', 10000000 - 1)")
        events: list[RecordEvent | RepoEvent] = []
        for b in range(6):
            batch = workload(10, b * 10)
            events += batch
            await append_batch(conn, batch)
        await conn.execute("UPDATE record_event SET received_at = now() - interval '10 days' WHERE seq < 10000025")
        await conn.execute("UPDATE repo_event SET received_at = now() - interval '10 days' WHERE seq < 10000025")
        not_yet = await trim_log(conn, 86400)
        assert not_yet.dropped == []  # nothing is projected yet: nothing may go
        await Projector(batch_size=100, lock=False).catch_up(conn)
        trimmed = await trim_log(conn, 86400)
        return {"events": events, "trimmed": trimmed}


async def test_retention_drops_old_projected_partitions_only(db_url: str) -> None:
    world = await _trimmed_world(db_url)
    trimmed = world["trimmed"]
    # [0, 10M) holds nothing, [10M, 10M+10) and [10M+10, 10M+20) are old; [10M+20, 10M+30) is half recent.
    assert trimmed.dropped == ["record_event_p0", "record_event_p10000000", "record_event_p10000010"]
    assert trimmed.dropped_through == 10000019
    async with await connect(db_url, autocommit=True) as conn:
        cur = await conn.execute("SELECT min(seq) FROM record_event")
        assert (await cur.fetchone())[0] >= 10000020  # type: ignore[index]
        assert (await trim_log(conn, 86400)).dropped == []  # idempotent
        # The keys of dropped events stay: a relay replaying them never gets them appended twice.
        replay = await append_batch(conn, [e for e in world["events"][:20] if isinstance(e, RecordEvent)])
        assert replay.records == 0
        before = await digest(conn)
    with pytest.raises(TrimmedLog, match="refused"):
        await rebuild(db_url, show_progress=False)
    async with await connect(db_url) as conn:
        assert await digest(conn) == before  # the refusal changed nothing


async def test_outbound_cursor_older_than_retention(db_url: str) -> None:
    await _trimmed_world(db_url)
    async with serve(stream_app(db_url)) as base:
        async with subscribe(base, cursor=5, includeRejected="true") as ws:
            frames = await read_frames(ws, 3)
        assert frames[0]["kind"] == "info" and frames[0]["name"] == "OutdatedCursor"
        assert frames[0]["oldest"] == 10000019
        assert [f["seq"] for f in frames[1:]] == sorted(f["seq"] for f in frames[1:])
        assert frames[1]["seq"] >= 10000020
        async with subscribe(base, cursor=10000019, includeRejected="true") as ws:  # at the floor: no #info
            first = (await read_frames(ws, 1))[0]
        assert first["seq"] == frames[1]["seq"]
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.get("/xrpc/fm.plyr.sync.getEvents", params={"cursor": 5})
            assert (r.status_code, r.json()["error"], r.json()["oldest"]) == (400, "OutdatedCursor", 10000019)


async def test_rebuild_refusal_from_the_cli(db_url: str) -> None:
    await _trimmed_world(db_url)
    env = {**os.environ, "DATABASE_URL": db_url}
    out = subprocess.run([sys.executable, "-m", "cli", "rebuild"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and "rebuild refused" in out.stderr and "10000019" in out.stderr


async def test_retention_never_drops_what_is_not_projected(db_url: str) -> None:
    """Retention never drops what the projector has not folded, even when it is old."""
    async with await connect(db_url, autocommit=True) as conn:
        await set_partition_size(conn, 10)
        await conn.execute("SELECT setval('event_seq', 10000000 - 1)")
        for b in range(3):
            await append_batch(conn, [*workload(9, b * 10), account(DID[1], True)])
        await conn.execute("UPDATE record_event SET received_at = now() - interval '10 days'")
        await conn.execute("UPDATE repo_event SET received_at = now() - interval '10 days'")
        await conn.execute("INSERT INTO projection_cursor (name, position) VALUES ('main', 10000012)"
                           " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position")
        trimmed = await trim_log(conn, 3600)
        assert trimmed.dropped == ["record_event_p0", "record_event_p10000000"]  # not past the position


async def test_truncating_everything_starts_over(db_url: str) -> None:
    """What benchmarks and property tests do between runs: the same events then append again."""
    from core.db.schema import metadata

    events = workload(30)
    async with await connect(db_url, autocommit=True) as conn:
        first = await append_batch(conn, events)
        await conn.execute("TRUNCATE record_event, repo_event")  # the key table follows the log
        assert (await append_batch(conn, events)).records == first.records
        await conn.execute(f"TRUNCATE {', '.join(repr(t.name).replace(chr(39), chr(34)) for t in metadata.sorted_tables)}")
        await conn.execute("ALTER SEQUENCE event_seq RESTART")
        again = await append_batch(conn, events)
        assert again.records == first.records and again.head == first.head and await _misplaced(conn) == 0


async def test_downgrade_and_upgrade_again_keep_the_log(empty_db: str) -> None:
    upgrade(empty_db)
    events = workload(50)
    async with await connect(empty_db, autocommit=True) as conn:
        await set_partition_size(conn, 1000)
        await conn.execute("SELECT setval('event_seq', 10000000 - 10)")  # rows on both sides of a bound
        await append_batch(conn, events)
        rows = await _log(conn)
    from alembic import command

    from core.db.migrate import alembic_config

    command.downgrade(alembic_config(empty_db), "0014")
    async with await connect(empty_db, autocommit=True) as conn:
        assert await _log(conn) == rows
        cur = await conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'record_event_dedup_%'")
        assert (await cur.fetchone())[0] == 2  # type: ignore[index]
    upgrade(empty_db)
    async with await connect(empty_db, autocommit=True) as conn:
        assert await _log(conn) == rows and await _misplaced(conn) == 0
        assert (await append_batch(conn, events)).records == 0


async def test_log_maintenance_component_sets_the_size_and_trims(db_url: str) -> None:
    import asyncio

    from ingester.eventlog.maintenance import log_maintenance

    async with await connect(db_url, autocommit=True) as conn:
        await set_partition_size(conn, 10)
        await conn.execute("SELECT setval('event_seq', 10000000 - 1)")
        for b in range(3):
            await append_batch(conn, workload(10, b * 10))
        await conn.execute("UPDATE record_event SET received_at = now() - interval '3 days' WHERE seq < 10000010")
        await conn.execute("UPDATE repo_event SET received_at = now() - interval '3 days' WHERE seq < 10000010")
        await Projector(batch_size=100, lock=False).catch_up(conn)
    stop = asyncio.Event()
    task = asyncio.create_task(log_maintenance(db_url, 5000, 2 * 86400, stop, interval_s=0.05))
    async with await connect(db_url, autocommit=True) as conn:
        for _ in range(100):
            cur = await conn.execute("SELECT dropped_through, partition_size FROM log_retention")
            floor, size = await cur.fetchone()  # type: ignore[misc]
            if floor >= 10000009:  # one transaction per partition: wait for the second
                break
            await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert (floor, size) == (10000009, 5000)
