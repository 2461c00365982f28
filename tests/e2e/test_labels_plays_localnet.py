"""End to end: labels from a fake labeler whose did:plc lives on the local PLC, and teal.fm plays of
both generations written to the real local PDS, through our running ingester."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import coincurve
import pytest

from appview.query.labels import labels_for
from appview.query.plays import history, play_counts
from core.db.connect import connect
from tests.e2e.conftest import Query, RunningIngester, eventually, ingester_settings
from tests.e2e.labeler_kit import FakeLabeler, register_labeler
from tests.ingester.labelkit import Labeler, now_iso
from tests.localnet.peer import Localnet, Xrpc

pytestmark = pytest.mark.e2e


async def _connected(running: RunningIngester) -> None:
    for _ in range(400):
        sources = running.ingester.label_sources if running.ingester else []
        if sources and sources[0].connected.is_set():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the ingester did not connect to the labeler")


@pytest.fixture
async def labeler(localnet: Localnet) -> AsyncIterator[FakeLabeler]:
    fake = FakeLabeler(Labeler("did:plc:placeholderplaceholder22"))
    await fake.start()
    await register_labeler(localnet.plc_url, fake.labeler)
    yield fake
    await fake.stop()


async def test_labels_round_trip_from_a_labeler(db_url: str, localnet: Localnet, labeler: FakeLabeler,
                                                q: Query) -> None:
    lb = labeler.labeler
    subject = f"at://{lb.did}/fm.plyr.track/3kaaaaaaaaa22"
    other = f"at://{lb.did}/fm.plyr.track/3kbbbbbbbbb22"
    # Subscribed by DID: the endpoint comes from the labeler's DID document on the PLC. Without a
    # cursor a labeler sends live labels only, so wait until we are connected before emitting.
    running = RunningIngester(ingester_settings(db_url, localnet, labelers=lb.did), db_url)
    await running.start()
    try:
        await _connected(running)
        await labeler.emit([lb.label(subject, "copyright-violation"), lb.label(other, "sexual"),
                            lb.label(other, "!takedown", key=coincurve.PrivateKey())])  # forged
        await eventually(q, "SELECT uri, val FROM label WHERE NOT neg ORDER BY uri, val", [
            (subject, "copyright-violation"), (other, "sexual")])
        assert await q("SELECT val, rejected FROM label_event WHERE rejected IS NOT NULL") == [
            ("!takedown", "bad signature")]
        await labeler.emit([lb.label(subject, "copyright-violation", neg=True, cts=now_iso(timedelta(seconds=1)))])
        await eventually(q, "SELECT uri FROM label WHERE NOT neg", [(other,)])
    finally:
        await running.stop()
    # Restart: resumes from the committed cursor; a label emitted while we were away arrives once.
    await labeler.emit([lb.label(subject, "porn")])
    running = RunningIngester(ingester_settings(db_url, localnet, labelers=lb.did), db_url)
    await running.start()
    try:
        await eventually(q, "SELECT uri, val FROM label WHERE NOT neg ORDER BY uri, val",
                         [(subject, "porn"), (other, "sexual")])
    finally:
        await running.stop()
    assert await q("SELECT cursor FROM source_cursor WHERE source = %s", f"labels:{lb.did}") == [(3,)]
    assert await q("SELECT count(*) FROM label_event") == [(5,)]
    async with await connect(db_url) as conn:
        assert await labels_for(conn, [subject, other]) == {subject: ["porn"], other: ["sexual"]}


def _play(collection: str, name: str, artist: str, alpha_fields: bool, when: str) -> dict:
    r = {"$type": collection, "trackName": name, "submissionClientAgent": "plyr.fm/1.0", "playedTime": when}
    if alpha_fields:
        r |= {"artistNames": [artist], "musicServiceBaseDomain": "plyr.fm", "originUrl": "https://plyr.fm/track/9"}
    else:
        r |= {"artists": [{"artistName": artist}], "musicServiceUri": "https://plyr.fm",
              "originUri": "https://plyr.fm/track/9"}
    return r


async def test_plays_from_the_pds_count_and_link(db_url: str, localnet: Localnet, xrpc: Xrpc, q: Query) -> None:
    running = RunningIngester(ingester_settings(db_url, localnet, labelers=""), db_url)
    await running.start()
    try:
        artist = await xrpc.create_account("nova-e2e.test")
        twin = await xrpc.create_account("nova-twin.test")
        fan = await xrpc.create_account("fan-e2e.test")
        track = {"$type": "fm.plyr.track", "title": "Lumen", "artist": "Nova", "fileType": "mp3",
                 "audioUrl": "https://audio.plyr.fm/audio/x.mp3", "createdAt": now_iso()}
        t1 = (await xrpc.create(artist, "fm.plyr.track", track))["uri"]
        await xrpc.create(artist, "fm.plyr.track", {**track, "title": "Echo"})
        await xrpc.create(twin, "fm.plyr.track", {**track, "title": "Echo"})  # same title + artist name
        when = now_iso(timedelta(minutes=-5))
        await xrpc.create(fan, "fm.teal.feed.play", _play("fm.teal.feed.play", "Lumen", "Nova", False, when))
        await xrpc.create(fan, "fm.teal.alpha.feed.play",
                          _play("fm.teal.alpha.feed.play", "Lumen", "Nova", True, when))
        # old field names inside the new collection (written between teal's two renames)
        await xrpc.create(fan, "fm.teal.feed.play", _play("fm.teal.feed.play", "Lumen", "Nova", True, when))
        await xrpc.create(fan, "fm.teal.feed.play", _play("fm.teal.feed.play", "Echo", "Nova", False, when))
        await xrpc.put(fan, "fm.teal.actor.status", "self", {
            "$type": "fm.teal.actor.status", "time": now_iso(), "expiry": now_iso(timedelta(minutes=5)),
            "item": {"trackName": "Lumen", "artists": [{"artistName": "Nova"}]}})
        await eventually(q, "SELECT link, count(*) FROM play GROUP BY link ORDER BY link",
                         [("ambiguous", 1), ("name", 3)])
        await eventually(q, "SELECT count(*) FROM actor_status", [(1,)])
        async with await connect(db_url) as conn:
            assert await play_counts(conn, [t1]) == {t1: 3}
            items, _ = await history(conn, fan.did, limit=10)
            assert sorted(i["trackName"] for i in items) == ["Echo", "Lumen", "Lumen", "Lumen"]
            assert {i["collection"] for i in items} == {"fm.teal.feed.play", "fm.teal.alpha.feed.play"}
            assert [i.get("track") for i in items if i["trackName"] == "Echo"] == [None]
        assert await q("SELECT count(*) FROM record_event WHERE rejected IS NOT NULL") == [(0,)]
    finally:
        await running.stop()
