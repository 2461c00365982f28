"""Labels: frame → validate → signature → log → projection → read, against a real Postgres."""

from __future__ import annotations

from datetime import timedelta

import coincurve
import psycopg

from appview.query.labels import labels_for
from ingester.pipeline.labels import LabelIngest
from ingester.projection.digest import digest
from ingester.projection.rebuild import rebuild
from ingester.projection.runner import Projector
from ingester.verify.labels import LabelVerifier
from tests.ingester.framekit import StaticResolver, random_plc
from tests.ingester.labelkit import Labeler, error_frame, info_frame, now_iso

ARTIST = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
T1 = f"at://{ARTIST}/fm.plyr.track/3kaaaaaaaaa22"
T2 = f"at://{ARTIST}/fm.plyr.track/3kbbbbbbbbb22"


async def _rows(conn: psycopg.AsyncConnection, sql: str) -> list[tuple]:
    async with conn.cursor() as cur:
        await cur.execute(sql)
        rows = await cur.fetchall()
    await conn.commit()
    return rows


def _setup(conn: psycopg.AsyncConnection, *, expected: bool = True) -> tuple[Labeler, LabelIngest]:
    lb = Labeler(random_plc())
    resolver = StaticResolver({lb.did: lb.doc()})
    verifier = LabelVerifier(resolver, expected_src=lb.did if expected else None)
    return lb, LabelIngest(conn, source="labels:test", verifier=verifier)


async def _labels(conn: psycopg.AsyncConnection, uris: list[str]) -> dict[str, list[str]]:
    await Projector().catch_up(conn)
    out = await labels_for(conn, uris)
    await conn.commit()
    return out


async def test_signed_labels_are_logged_projected_and_read(conn: psycopg.AsyncConnection) -> None:
    lb, ingest = _setup(conn)
    outcome = await ingest.handle(lb.frame([lb.label(T1, "copyright-violation"), lb.label(T1, "sexual")]))
    assert outcome.last_seq == 1 and outcome.appended == 2
    assert await _labels(conn, [T1, T2]) == {T1: ["copyright-violation", "sexual"]}
    assert await _rows(conn, "SELECT verified, rejected FROM label_event") == [(True, None), (True, None)]
    assert await _rows(conn, "SELECT cursor FROM source_cursor WHERE source = 'labels:test'") == [(1,)]


async def test_forged_labels_are_rejected_with_a_reason(conn: psycopg.AsyncConnection) -> None:
    lb, ingest = _setup(conn)
    forged = lb.label(T1, "!takedown", key=coincurve.PrivateKey())  # signed by someone else's key
    tampered = {**lb.label(T1, "sexual"), "val": "porn"}  # signature no longer covers the content
    other = Labeler(random_plc())
    stranger = other.label(T1, "!hide")  # validly signed, by a labeler we did not subscribe to
    good = lb.label(T2, "!takedown")
    await ingest.handle(lb.frame([forged, tampered, stranger, good]))
    rows = await _rows(conn, "SELECT val, verified, rejected FROM label_event ORDER BY seq")
    assert rows == [
        ("!takedown", False, "bad signature"),
        ("porn", False, "bad signature"),
        ("!hide", False, f"src {other.did} is not the subscribed labeler {lb.did}"),
        ("!takedown", True, None),
    ]
    assert await _labels(conn, [T1, T2]) == {T2: ["!takedown"]}


async def test_malformed_labels_are_rejected_not_raised(conn: psycopg.AsyncConnection) -> None:
    lb, ingest = _setup(conn)
    good = lb.label(T1, "sexual")
    bad = [
        {**good, "ver": 2}, {**good, "uri": "https://example.com"}, {**good, "cts": "yesterday"},
        {**good, "val": "x" * 129}, {**good, "sig": "not-bytes"}, {**good, "neg": "yes"}, "not a map", 42,
        {**good, "val": "a\x00b"},
    ]
    outcome = await ingest.handle(lb.frame([*bad, good]))
    assert outcome.appended == len(bad) + 1
    rejected = await _rows(conn, "SELECT rejected FROM label_event WHERE rejected IS NOT NULL ORDER BY seq")
    assert len(rejected) == len(bad)
    assert rejected[0] == ("ver must be 1, got 2",)
    assert await _labels(conn, [T1]) == {T1: ["sexual"]}


async def test_negation_and_expiry_stop_a_label_applying(conn: psycopg.AsyncConnection) -> None:
    lb, ingest = _setup(conn)
    old = now_iso(timedelta(seconds=-60))
    await ingest.handle(lb.frame([
        lb.label(T1, "copyright-violation", cts=old),
        lb.label(T2, "sexual", exp=now_iso(timedelta(seconds=-1))),  # already expired
        lb.label(T2, "porn", exp=now_iso(timedelta(days=1))),  # expires tomorrow
    ]))
    assert await _labels(conn, [T1, T2]) == {T1: ["copyright-violation"], T2: ["porn"]}
    negation = lb.label(T1, "copyright-violation", neg=True, cts=now_iso())
    await ingest.handle(lb.frame([negation]))
    assert await _labels(conn, [T1, T2]) == {T2: ["porn"]}
    # The original label replayed (another reconnect, another copy) is older than the negation.
    replay = lb.label(T1, "copyright-violation", cts=now_iso(timedelta(seconds=-30)))
    await ingest.handle(lb.frame([replay]))
    assert await _labels(conn, [T1, T2]) == {T2: ["porn"]}
    assert await _rows(conn, f"SELECT neg FROM label WHERE uri = '{T1}'") == [(True,)]
    # A later re-label applies again.
    await ingest.handle(lb.frame([lb.label(T1, "copyright-violation", cts=now_iso(timedelta(seconds=1)))]))
    assert await _labels(conn, [T1]) == {T1: ["copyright-violation"]}


async def test_account_labels_apply_to_the_accounts_records(conn: psycopg.AsyncConnection) -> None:
    lb, ingest = _setup(conn)
    await ingest.handle(lb.frame([lb.label(ARTIST, "!takedown")]))
    assert await _labels(conn, [T1, ARTIST]) == {T1: ["!takedown"], ARTIST: ["!takedown"]}


async def test_replays_dedup_and_odd_frames_do_no_harm(conn: psycopg.AsyncConnection) -> None:
    lb, ingest = _setup(conn)
    frame = lb.frame([lb.label(T1, "sexual")])
    await ingest.handle(frame)
    again = await ingest.handle(frame)
    assert again.appended == 0 and again.last_seq == 1
    for raw in (b"", b"\xff\x00garbage", info_frame(), error_frame("FutureCursor")):
        assert (await ingest.handle(raw)).last_seq is None
    assert (await ingest.handle(error_frame())).error == "FutureCursor"
    assert await _rows(conn, "SELECT count(*) FROM label_event") == [(1,)]


async def test_unresolvable_labeler_is_logged_unverified(conn: psycopg.AsyncConnection) -> None:
    lb = Labeler(random_plc())
    ingest = LabelIngest(conn, source="labels:x", verifier=LabelVerifier(StaticResolver({})))
    await ingest.handle(lb.frame([lb.label(T1, "!hide")]))
    assert await _rows(conn, "SELECT verified, rejected FROM label_event") == [(False, None)]
    assert await _labels(conn, [T1]) == {}


async def test_key_rotation_refetches_once(conn: psycopg.AsyncConnection) -> None:
    lb = Labeler(random_plc())
    resolver = StaticResolver({lb.did: lb.doc()})
    ingest = LabelIngest(conn, source="labels:t", verifier=LabelVerifier(resolver, expected_src=lb.did))
    await ingest.handle(lb.frame([lb.label(T1, "sexual")]))
    lb.key = coincurve.PrivateKey()
    resolver.docs[lb.did] = lb.doc()  # published the new key; our cache still has the old doc
    await ingest.handle(lb.frame([lb.label(T2, "sexual")]))
    assert await _labels(conn, [T1, T2]) == {T1: ["sexual"], T2: ["sexual"]}


async def test_rebuild_reproduces_labels(db_url: str, conn: psycopg.AsyncConnection) -> None:
    lb, ingest = _setup(conn)
    await ingest.handle(lb.frame([lb.label(T1, "sexual"), lb.label(T2, "!hide")]))
    await ingest.handle(lb.frame([lb.label(T1, "sexual", neg=True, cts=now_iso(timedelta(seconds=1)))]))
    await Projector(batch_size=1).catch_up(conn)
    live = await digest(conn)
    await conn.commit()
    await rebuild(db_url, show_progress=False)
    assert await digest(conn) == live
    assert any(t.table == "label" and t.rows == 2 for t in live.tables)
