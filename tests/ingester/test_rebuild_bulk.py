"""The bulk-load rebuild: same digest as live ingest whatever the batching, survives kill -9, reads records back
exactly (JSON that the fast decoder would get wrong)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psycopg

from core.db.schema import PROJECTION_TABLES
from core.events import LoggedRecord
from ingester.eventlog.append import append_batch
from ingester.eventlog.read import read_after
from ingester.projection.digest import digest
from ingester.projection.rebuild import SHADOW, rebuild
from ingester.projection.runner import Projector
from tests.ingester import events as ev

TRACK, LIKE, COMMENT, LIST = "fm.plyr.track", "fm.plyr.like", "fm.plyr.comment", "fm.plyr.list"
PLAY = "fm.teal.feed.play"
DIDS = [f"did:plc:{c * 24}" for c in "abcdefgh"]


def _play(name: str, artist: str) -> dict[str, Any]:
    return {"$type": PLAY, "trackName": name, "artists": [{"artistName": artist}], "musicServiceUri": "https://plyr.fm",
            "submissionClientAgent": "plyr.fm/1.0", "playedTime": "2026-11-20T10:00:00Z"}


def _log() -> list[Any]:
    """Every kind of event the fold treats specially, interleaved: identities between records, likes and
    comments from accounts that are deactivated, reactivated and deleted, plays linked by name and ambiguous,
    lists rewritten, records deleted and re-created."""
    out: list[Any] = []
    rev = 0

    def r() -> str:
        nonlocal rev
        rev += 1
        return f"3k{rev:011d}"
    for i, did in enumerate(DIDS):
        out.append(ev.identity(did, f"u{i}.test"))
        out.append(ev.put(did, TRACK, f"3kt{i:010d}", r(), ev.track(f"song {i % 3}", artist="Nova")))
    tracks = [f"at://{d}/{TRACK}/3kt{i:010d}" for i, d in enumerate(DIDS)]
    for j in range(60):
        did, subject = DIDS[j % len(DIDS)], tracks[(j * 7) % len(tracks)]
        out.append(ev.put(did, LIKE, f"3kl{j:010d}", r(), ev.like(subject)))
        if j % 4 == 0:
            out.append(ev.put(did, COMMENT, f"3kc{j:010d}", r(), ev.comment(subject, f"c{j}")))
        if j % 9 == 0:
            out.append(ev.delete(did, LIKE, f"3kl{j:010d}", r()))
        if j % 11 == 0:
            out.append(ev.put(did, PLAY, f"3kp{j:010d}", r(), _play(f"song {j % 3}", "Nova")))
        if j == 20:
            out.append(ev.account(DIDS[1], False, "deactivated"))
        if j == 30:
            out.append(ev.identity(DIDS[2], "renamed.test"))
            out.append(ev.account(DIDS[1], True))
            out.append(ev.account(DIDS[3], False, "deleted"))
        if j == 40:
            out.append(ev.put(DIDS[0], LIST, "3klist000000", r(), ev.plist(tracks[:3])))
            out.append(ev.put(DIDS[0], TRACK, "3kt0000000000", r(), ev.track("song 1", artist="Nova"),
                              action="update"))
        if j == 50:
            out.append(ev.put(DIDS[0], LIST, "3klist000000", r(), ev.plist(tracks[2:6]), action="update"))
            out.append(ev.account(DIDS[4], False, "takendown"))
            out.append(ev.delete(DIDS[5], TRACK, "3kt0000000005", r()))
            out.append(ev.put(DIDS[5], TRACK, "3kt0000000005", r(), ev.track("again", artist="Nova")))
    return out


async def _indexes(conn: psycopg.AsyncConnection) -> set[str]:
    cur = await conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    return {row[0] for row in await cur.fetchall()}


async def test_bulk_rebuild_equals_live_whatever_the_batching(db_url: str, conn: psycopg.AsyncConnection) -> None:
    log = _log()
    for i in range(0, len(log), 5):  # appended in small batches, projected one event per step: most interleaved
        await append_batch(conn, log[i:i + 5])
    await Projector(batch_size=1).catch_up(conn)
    live = await digest(conn)
    await conn.commit()
    declared = {str(ix.name) for t, _ in PROJECTION_TABLES for ix in t.indexes}
    assert live.tables[[t.table for t in live.tables].index("subject_count")].rows > 0
    for batch in (20_000, 1, 4, 33):
        await rebuild(db_url, batch_size=batch, show_progress=False)
        assert await digest(conn) == live, f"batch {batch}"
        assert declared <= await _indexes(conn)  # every read-side index is back, under its name
        await conn.commit()


async def test_kill_9_mid_rebuild_leaves_live_tables_and_a_rerun_finishes(
        db_url: str, conn: psycopg.AsyncConnection) -> None:
    filler = [ev.put(DIDS[6], LIKE, f"3kf{j:010d}", f"3m{j:011d}", ev.like(f"at://{DIDS[0]}/{TRACK}/3kt0000000000"))
              for j in range(5000)]
    await append_batch(conn, _log() + filler)
    await Projector().catch_up(conn)
    live = await digest(conn)
    await conn.commit()
    code = ("import asyncio, sys; from ingester.projection.rebuild import rebuild; "
            "asyncio.run(rebuild(sys.argv[1], batch_size=1, show_progress=False))")
    proc = subprocess.Popen([sys.executable, "-c", code, db_url])  # noqa: ASYNC220 - killed, never awaited
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the shadow schema is committed before the load starts
            cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SHADOW}.projection_cursor",))
            found = (await cur.fetchone())[0]  # type: ignore[index]
            await conn.commit()
            if found:
                break
            await asyncio.sleep(0.01)
        # Into the load, which runs as one transaction (the filler: ~5,000 steps of one event, seconds).
        await asyncio.sleep(0.2)
        assert proc.poll() is None, "the rebuild finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert await digest(conn) == live  # the live tables were never touched
    await conn.commit()
    await rebuild(db_url, show_progress=False)
    assert await digest(conn) == live
    cur = await conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (SHADOW,))
    assert (await cur.fetchone())[0] == 0  # type: ignore[index]


async def test_records_read_back_exactly(conn: psycopg.AsyncConnection) -> None:
    """Numbers at the edges of 64 bits and of float64, and long digit runs, read back exactly as `json.loads`
    gives them from the stored text (the fast decoder would turn some into floats)."""
    odd = ev.track("odd", big=2**64 - 1, neg=-(2**63), edge=2**53 + 1, tiny=5e-324,
                   huge=1.7976931348623157e308, pi=3.141592653589793238, text="é\u2028x 1234567890123456789",
                   nested=[{"n": 12345678901234567890}])
    await append_batch(conn, [ev.put(DIDS[0], TRACK, "3kodd0000000", "3k00000000001", odd)])
    [got] = await read_after(conn, 0, 10)
    cur = await conn.execute("SELECT record::text FROM record_event")
    stored = json.loads((await cur.fetchone())[0])  # type: ignore[index]
    assert isinstance(got, LoggedRecord) and repr(got.record) == repr(stored)
    assert type(got.record["big"]) is int and type(got.record["nested"][0]["n"]) is int
