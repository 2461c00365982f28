"""Every collection written through XRPC to the real reference PDS reaches the projections."""

from __future__ import annotations

import uuid

from core.db.connect import connect
from ingester.projection.digest import digest
from ingester.projection.rebuild import rebuild
from tests.e2e.conftest import Query, RunningIngester, eventually, wav_bytes
from tests.localnet.peer import Xrpc

NOW = "2026-11-24T12:00:00.000Z"


def handle(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}.test"


def track(title: str, **extra: object) -> dict:
    return {"$type": "fm.plyr.track", "title": title, "artist": "Alice", "fileType": "wav",
            "createdAt": NOW, **extra}


async def test_every_collection_end_to_end(xrpc: Xrpc, ingester: RunningIngester, q: Query,
                                           db_url: str) -> None:
    alice = await xrpc.create_account(handle("alice"))
    bob = await xrpc.create_account(handle("bob"))
    blob = await xrpc.upload_blob(alice, wav_bytes(), "audio/wav")
    t1 = await xrpc.create(alice, "fm.plyr.track", track("First", audioBlob=blob))
    t1_rkey = t1["uri"].rsplit("/", 1)[1]
    t2 = await xrpc.create(alice, "fm.plyr.track", track("Second", audioUrl="https://audio.plyr.fm/a.mp3"))
    await xrpc.put(alice, "fm.plyr.track", t1_rkey, track("First (remaster)", audioBlob=blob, duration=3))
    like = await xrpc.create(bob, "fm.plyr.like", {"$type": "fm.plyr.like", "createdAt": NOW,
                                                   "subject": {"uri": t1["uri"], "cid": t1["cid"]}})
    comment = {"$type": "fm.plyr.comment", "subject": {"uri": t1["uri"], "cid": t1["cid"]},
               "text": "the drop at 0:01", "timestampMs": 1000, "createdAt": NOW}
    c1 = await xrpc.create(bob, "fm.plyr.comment", comment)
    await xrpc.put(alice, "fm.plyr.actor.profile", "self",
                   {"$type": "fm.plyr.actor.profile", "bio": "I make songs", "createdAt": NOW})
    album = {"$type": "fm.plyr.list", "name": "Debut", "listType": "album", "createdAt": NOW,
             "items": [{"subject": {"uri": t["uri"], "cid": t["cid"]}} for t in (t2, t1)]}
    await xrpc.create(alice, "fm.plyr.list", album)
    # An invalid record (title too long) is logged as rejected and never projected.
    await xrpc.create(alice, "fm.plyr.track", track("x" * 300, audioUrl="https://a.example/x.mp3"))

    await eventually(q, "SELECT title, duration, audio_blob_cid, audio_blob_mime FROM track WHERE uri = %s",
                     [("First (remaster)", 3, blob["ref"]["$link"], blob["mimeType"])], t1["uri"])
    await eventually(q, "SELECT count(*) FROM track WHERE did = %s", [(2,)], alice.did)
    await eventually(q, 'SELECT subject_uri FROM "like" WHERE uri = %s', [(t1["uri"],)], like["uri"])
    await eventually(q, "SELECT text, timestamp_ms FROM comment", [("the drop at 0:01", 1000)])
    await eventually(q, "SELECT bio FROM artist_profile WHERE did = %s", [("I make songs",)], alice.did)
    await eventually(q, "SELECT li.subject_uri FROM list_item li JOIN list l ON l.uri = li.list_uri "
                        "WHERE l.list_type = 'album' ORDER BY li.position", [(t2["uri"],), (t1["uri"],)])
    await eventually(q, "SELECT handle, status FROM actor WHERE did = %s", [(alice.handle, "active")], alice.did)
    await eventually(q, "SELECT count(*) FROM record_event WHERE rejected LIKE 'title%%'", [(1,)])
    await eventually(q, "SELECT bool_and(verified) FROM record_event", [(True,)])

    # applyWrites: one commit, several ops (creates, an update, a delete) across collections.
    await xrpc.apply_writes(alice, [
        {"$type": "com.atproto.repo.applyWrites#create", "collection": "fm.plyr.track", "rkey": "3kzzzzzzzzz22",
         "value": track("Batch A", audioUrl="https://audio.plyr.fm/b.mp3")},
        {"$type": "com.atproto.repo.applyWrites#update", "collection": "fm.plyr.track",
         "rkey": t2["uri"].rsplit("/", 1)[1], "value": track("Second (edit)", audioUrl="https://audio.plyr.fm/a.mp3")},
        {"$type": "com.atproto.repo.applyWrites#delete", "collection": "fm.plyr.track", "rkey": t1_rkey},
    ])
    await xrpc.delete(bob, "fm.plyr.comment", c1["uri"].rsplit("/", 1)[1])
    await eventually(q, "SELECT title FROM track WHERE did = %s ORDER BY title", [("Batch A",), ("Second (edit)",)],
                     alice.did)
    await eventually(q, "SELECT count(*) FROM comment", [(0,)])

    # Projections are a pure function of the log: a rebuild reproduces them exactly.
    await ingester.stop()
    async with await connect(db_url) as conn:
        live = await digest(conn)
        await conn.commit()
        await rebuild(db_url, show_progress=False)
        assert (await digest(conn)).sha256 == live.sha256


async def test_identity_and_account_lifecycle(xrpc: Xrpc, ingester: RunningIngester, q: Query) -> None:
    carol = await xrpc.create_account(handle("carol"))
    await xrpc.create(carol, "fm.plyr.track", track("Hers", audioUrl="https://audio.plyr.fm/c.mp3"))
    await eventually(q, "SELECT handle, status FROM actor WHERE did = %s", [(carol.handle, "active")], carol.did)

    renamed = handle("caz")
    await xrpc.call("com.atproto.identity.updateHandle", {"handle": renamed}, carol)
    await eventually(q, "SELECT handle FROM actor WHERE did = %s", [(renamed,)], carol.did)

    await xrpc.call("com.atproto.server.deactivateAccount", {}, carol)
    await eventually(q, "SELECT status, active FROM actor WHERE did = %s", [("deactivated", False)], carol.did)
    await eventually(q, "SELECT count(*) FROM track WHERE did = %s", [(1,)], carol.did)  # hidden, not lost
    await xrpc.call("com.atproto.server.activateAccount", None, carol)
    await eventually(q, "SELECT status, active FROM actor WHERE did = %s", [("active", True)], carol.did)

    await xrpc.call("com.atproto.admin.deleteAccount", {"did": carol.did}, admin=True)
    await eventually(q, "SELECT status FROM actor WHERE did = %s", [("deleted",)], carol.did)
    await eventually(q, "SELECT count(*) FROM track WHERE did = %s", [(0,)], carol.did)


async def test_resumes_from_committed_cursor(xrpc: Xrpc, ingester: RunningIngester, q: Query) -> None:
    dave = await xrpc.create_account(handle("dave"))
    await xrpc.create(dave, "fm.plyr.track", track("Before", audioUrl="https://audio.plyr.fm/d.mp3"))
    await eventually(q, "SELECT count(*) FROM track WHERE did = %s", [(1,)], dave.did)
    await ingester.stop()
    await xrpc.create(dave, "fm.plyr.track", track("While down", audioUrl="https://audio.plyr.fm/e.mp3"))
    await ingester.start()
    await xrpc.create(dave, "fm.plyr.track", track("After", audioUrl="https://audio.plyr.fm/f.mp3"))
    await eventually(q, "SELECT title FROM track WHERE did = %s ORDER BY title",
                     [("After",), ("Before",), ("While down",)], dave.did)
    await eventually(q, "SELECT count(*) FROM record_event WHERE did = %s", [(3,)], dave.did)
