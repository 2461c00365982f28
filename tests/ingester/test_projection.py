"""Append → project → digest → rebuild against a real Postgres."""

from __future__ import annotations

import hashlib

import psycopg

from ingester.eventlog.append import append_batch
from ingester.metrics import REDONE
from ingester.projection.digest import digest, table_rows
from ingester.projection.rebuild import rebuild
from ingester.projection.runner import Projector
from tests.ingester import events as ev

A = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
B = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
TRACK = "fm.plyr.track"
T1 = f"at://{A}/{TRACK}/3kaaaaaaaaa22"


async def _rows(conn: psycopg.AsyncConnection, sql: str) -> list[tuple]:
    async with conn.cursor() as cur:
        await cur.execute(sql)
        return await cur.fetchall()


async def test_fold_all_collections(conn: psycopg.AsyncConnection) -> None:
    await append_batch(conn, [
        ev.identity(A, "alice.test"),
        ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000001a", ev.track("first")),
        ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000002a", ev.track("renamed"), action="update"),
        ev.put(B, "fm.plyr.like", "3kbbbbbbbbb22", "3k0000000001b", ev.like(T1)),
        ev.put(B, "fm.plyr.comment", "3kccccccccc22", "3k0000000002b", ev.comment(T1)),
        ev.put(A, "fm.plyr.list", "3kddddddddd22", "3k0000000003a", ev.plist([T1, T1], list_type="album")),
        ev.put(A, "fm.plyr.actor.profile", "self", "3k0000000004a", ev.profile()),
    ], cursor=("test", 7))
    assert await Projector().catch_up(conn) == 7
    assert await _rows(conn, "SELECT title FROM track") == [("renamed",)]
    assert await _rows(conn, 'SELECT subject_uri FROM "like"') == [(T1,)]
    assert await _rows(conn, "SELECT text, timestamp_ms FROM comment") == [("nice", 1000)]
    assert await _rows(conn, "SELECT list_type, item_count FROM list") == [("album", 2)]
    assert await _rows(conn, "SELECT position FROM list_item ORDER BY position") == [(0,), (1,)]
    assert await _rows(conn, "SELECT bio FROM artist_profile") == [("hello",)]
    assert await _rows(conn, "SELECT handle, status FROM actor") == [("alice.test", "active")]


async def test_rev_guard_and_tombstone(conn: psycopg.AsyncConnection) -> None:
    await append_batch(conn, [
        ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000005a", ev.track("new")),
        ev.delete(A, TRACK, "3kaaaaaaaaa22", "3k0000000006a"),
    ])
    await Projector().catch_up(conn)
    # A replayed older create (other source) must not resurrect the deleted track.
    await append_batch(conn, [ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000005a", ev.track("new"),
                                     source="other")])
    await Projector().catch_up(conn)
    assert await _rows(conn, "SELECT count(*) FROM track") == [(0,)]
    assert await _rows(conn, "SELECT deleted FROM record_state") == [(True,)]


async def test_dedup_key(conn: psycopg.AsyncConnection) -> None:
    e = ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000005a", ev.track())
    first = await append_batch(conn, [e, e])
    again = await append_batch(conn, [e])
    assert (first.records, first.duplicates, again.records) == (1, 1, 0)


async def test_account_lifecycle(conn: psycopg.AsyncConnection) -> None:
    await append_batch(conn, [
        ev.identity(A, "alice.test"),
        ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000001a", ev.track()),
        ev.account(A, False, "deactivated"),
    ])
    await Projector().catch_up(conn)
    assert await _rows(conn, "SELECT status, active FROM actor") == [("deactivated", False)]
    assert await _rows(conn, "SELECT count(*) FROM track") == [(1,)]  # hidden on read, not lost
    await append_batch(conn, [ev.account(A, True), ev.account(A, False, "deleted")])
    await Projector().catch_up(conn)
    assert await _rows(conn, "SELECT status FROM actor") == [("deleted",)]
    assert await _rows(conn, "SELECT count(*) FROM track") == [(0,)]


async def test_rebuild_reproduces_live_digest(db_url: str, conn: psycopg.AsyncConnection) -> None:
    projector = Projector(batch_size=3)  # small pages: live-like batching
    for i in range(10):
        rkey = f"3kaaaaaaaa{i:02d}2"
        await append_batch(conn, [
            ev.put(A, TRACK, rkey, f"3k00000000{i:02d}0", ev.track(f"t{i}")),
            ev.put(B, "fm.plyr.like", rkey, f"3k00000000{i:02d}1", ev.like(f"at://{A}/{TRACK}/{rkey}")),
        ])
        if i % 3 == 0:
            await append_batch(conn, [ev.delete(A, TRACK, rkey, f"3k00000000{i:02d}5")])
        if i % 4 == 0:
            await append_batch(conn, [ev.put(A, TRACK, rkey, f"3k00000000{i:02d}7", ev.track("again"))])
        await projector.catch_up(conn)
    live = await digest(conn)
    await conn.commit()
    await rebuild(db_url, show_progress=False)
    assert (await digest(conn)).sha256 == live.sha256
    await conn.commit()
    await rebuild(db_url, batch_size=7, show_progress=False)
    assert (await digest(conn)).sha256 == live.sha256
    # What a mismatch report shows is what the digest hashed: each table's rows, in its order.
    for t in live.tables:
        for mode in ("full", "content"):
            rows = await table_rows(conn, t.table, mode)  # type: ignore[arg-type]
            expected = next(x for x in (await digest(conn, mode)).tables if x.table == t.table)  # type: ignore[arg-type]
            assert (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()) == (expected.rows, expected.sha256)


async def test_a_first_row_that_meets_an_existing_one_redoes_the_step_with_upserts(
        conn: psycopg.AsyncConnection) -> None:
    """A record without state is COPYed straight into its table (`Put.fresh`). Should a row be there all the
    same (state and projections out of step: a hand edit, a restore of one table), the COPY's unique violation
    costs one redone step, every write an upsert, never a stalled projector."""
    await append_batch(conn, [ev.identity(A, "alice.test"), ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000001a",
                                                                   ev.track("first"))])
    projector = Projector()
    assert await projector.catch_up(conn) == 2
    await conn.execute("DELETE FROM record_state")  # the track row stays: its key now looks fresh
    await conn.execute("DELETE FROM \"like\"")
    await conn.commit()
    await append_batch(conn, [
        ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000002a", ev.track("renamed"), action="update"),
        ev.put(B, "fm.plyr.like", "3kbbbbbbbbb22", "3k0000000001b", ev.like(T1)),
    ])
    redone = REDONE._value.get()
    assert await projector.catch_up(conn) == 2
    assert REDONE._value.get() == redone + 1
    assert projector.trust_fresh  # only the one step went the safe way
    assert await _rows(conn, "SELECT title FROM track") == [("renamed",)]
    assert await _rows(conn, 'SELECT subject_uri FROM "like"') == [(T1,)]
    assert await _rows(conn, "SELECT collection, rev FROM record_state ORDER BY collection") == [
        ("fm.plyr.like", "3k0000000001b"), (TRACK, "3k0000000002a")]


async def test_the_rebuild_shortcut_looks_up_repeated_records_and_those_logged_after_it(
        conn: psycopg.AsyncConnection) -> None:
    """`SingleEventKeys` (a rebuild skips looking up records with one event in the log): a record edited
    before the hint was taken is in `repeated`; one edited after it is past `through`. Neither is taken for
    new (which would meet its row and redo the step)."""
    from ingester.projection.rebuild import _single_event_keys

    await append_batch(conn, [
        ev.identity(A, "alice.test"),
        ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000001a", ev.track("first")),
        ev.put(A, TRACK, "3kaaaaaaaaa22", "3k0000000002a", ev.track("edited"), action="update"),
        ev.put(A, TRACK, "3kaaaaaaaaa33", "3k0000000003a", ev.track("second")),
    ])
    await conn.commit()
    hint = await _single_event_keys(conn)
    assert hint is not None and hint.repeated == {(A, TRACK, "3kaaaaaaaaa22")}
    await append_batch(conn, [
        ev.put(A, TRACK, "3kaaaaaaaaa33", "3k0000000004a", ev.track("second, edited"), action="update"),
    ])
    await conn.commit()
    projector = Projector(batch_size=1)
    projector.single_event_keys = hint
    redone = REDONE._value.get()
    assert await projector.catch_up(conn) == 5
    assert REDONE._value.get() == redone
    assert await _rows(conn, "SELECT title FROM track ORDER BY rkey") == [("edited",), ("second, edited",)]
