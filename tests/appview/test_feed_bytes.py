"""The one-statement feed page (`/tracks/`) serves exactly the bytes the model path serves: the skeleton
query + batched hydration + `TracksListResponse`, serialised as FastAPI serialises a response model —
for anonymous and signed-in viewers, every page of the keyset, artist pages, and hostile record data."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi.responses import JSONResponse

from appview.query import tracks as track_q
from appview.views import plyr_pages
from appview.views.plyr_models import TracksListResponse
from core.db.connect import connect
from core.events import LabelEvent
from ingester.eventlog.labels import append_labels
from ingester.projection.runner import Projector
from tests.appview.world import ART, FAN, FAN2, TRACK, World, client
from tests.ingester import events as ev

STRANGER = "did:plc:strangeraaaaaaaaaaaaaaaa"
LABELER = "did:plc:labelerqqqqqqqqqqqqqqqq"


async def old_page(conn: psycopg.AsyncConnection, viewer: str | None, cursor: str | None, limit: int,
                   artist: str | None = None) -> bytes:
    """The implementation this replaced, kept here as the reference."""
    if artist:
        page = await track_q.by_artist(conn, artist, cursor, limit)
    else:
        page = await track_q.latest(conn, viewer, cursor, limit)
    items = await plyr_pages.tracks(conn, page.ids, viewer, with_record_url=True)
    model = TracksListResponse(tracks=items, next_cursor=page.cursor, has_more=page.cursor is not None)
    return bytes(JSONResponse(model.model_dump(mode="json")).body)


async def new_page(conn: psycopg.AsyncConnection, viewer: str | None, cursor: str | None, limit: int,
                   artist: str | None = None) -> bytes:
    where, params = ((track_q.artist_where(), {"did": artist}) if artist else (track_q.latest_where(), {}))
    return await plyr_pages.feed_page_json(conn, where, params, cursor, limit, viewer)


async def hostile_world(world: World) -> None:
    world.actor(STRANGER, "stranger.test")
    world.put(ART, "app.bsky.actor.profile", {"$type": "app.bsky.actor.profile", "displayName": "Ärtist ✨"},
              rkey="self")
    for i in range(7):
        title = f"song {i} \u0001\"quoted\" \\ </script> \u2028 🎧"
        world.put(ART, TRACK, ev.track(title, createdAt=f"2026-11-1{i}T10:00:00.000Z",
                                       artist="The Artist", album="Derived Album" if i % 2 else None,
                                       duration=2**63 - 1 if i == 3 else i,
                                       imageUrl="javascript:alert(1)" if i == 1 else f"https://images.plyr.fm/images/x{i}.png",
                                       audioUrl="http://169.254.169.254/x" if i == 2 else "https://audio.plyr.fm/audio/a.mp3",
                                       features=[{"did": STRANGER, "handle": "stranger.test"},
                                                 {"did": "did:plc:unknownaaaaaaaaaaaaaaaaa", "handle": "ghost.test",
                                                  "displayName": "Ghost"},
                                                 {"did": FAN2}, "not an object", {"did": 7}] if i == 4 else [],
                                       **({"supportGate": {"type": "any", "amount": 3}} if i == 5 else {})))
    world.put(FAN, "fm.teal.feed.play", {"$type": "fm.teal.feed.play", "trackName": "first light",
                                         "artists": [{"artistName": "The Artist"}], "originUrl": world.t1,  # type: ignore[attr-defined]
                                         "playedTime": "2026-11-24T10:00:00.000Z"})
    world.put(FAN2, "fm.teal.feed.play", {"$type": "fm.teal.feed.play", "trackName": "first light",
                                          "artists": [{"artistName": "The Artist"}], "originUrl": world.t1,  # type: ignore[attr-defined]
                                          "playedTime": "2026-11-24T11:00:00.000Z"})
    world.put(FAN, "fm.plyr.like", ev.like("at://did:plc:nobodyaaaaaaaaaaaaaaaaaa/fm.plyr.track/3kzzzzzzzzz22"))
    world.account(STRANGER, False, "deactivated")
    await world.flush()
    body: dict[str, Any] = {"ver": 1, "src": LABELER, "uri": FAN2, "val": "!hide", "cts": "2026-11-24T12:00:00.000Z"}
    async with await connect(world.db_url) as conn:  # a hidden listener: its play does not count
        await append_labels(conn, [LabelEvent(LABELER, FAN2, "!hide", body, "d1", "labels:test", None, True)])
        await Projector().catch_up(conn)


async def test_feed_bytes_equal_the_model_path(world: World) -> None:
    await hostile_world(world)
    async with await connect(world.db_url) as conn:
        await conn.set_autocommit(True)
        pages = 0
        for viewer in (None, FAN, ART):
            for artist in (None, ART):
                for limit in (1, 3, 50, 100):
                    cursor: str | None = None
                    while True:
                        new = await new_page(conn, viewer, cursor, limit, artist)
                        assert new == await old_page(conn, viewer, cursor, limit, artist), (viewer, artist, limit)
                        pages += 1
                        cursor = TracksListResponse.model_validate_json(new).next_cursor
                        if cursor is None:
                            break
        assert pages > 40
        # a bare timestamp cursor (plyr.fm's own form) pages the same way too
        assert await new_page(conn, None, "2026-11-14T00:00:00Z", 3) == await old_page(conn, None,
                                                                                      "2026-11-14T00:00:00Z", 3)


async def test_feed_route_serves_those_bytes(world: World) -> None:
    await hostile_world(world)
    async with client(world.db_url) as c:
        r = await c.get("/tracks/", params={"limit": 4})
        second = await c.get(f"/tracks/?artist_did={ART}&limit=2&cursor={r.json()['next_cursor']}")
        bad = await c.get("/tracks/", params={"cursor": "not a cursor"})
    async with await connect(world.db_url) as conn:
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.content == await old_page(conn, None, None, 4)
        assert second.content == await old_page(conn, None, r.json()["next_cursor"], 2, ART)
    assert bad.status_code == 400
    titles = [t["title"] for t in r.json()["tracks"]]
    assert titles[0].startswith("song 6") and all(t["r2_url"] is None or t["r2_url"].startswith("https://")
                                                   for t in r.json()["tracks"])


async def test_one_track_by_uri_or_id_equals_batched_hydration(world: World) -> None:
    """`/tracks/{id}`, `/tracks/by-uri` and XRPC `getTrack` read one card by its key: the same TrackData the
    batched hydration builds, for every track (hidden ones: None by both), every viewer."""
    from appview.hydration.tracks import hydrate
    from appview.hydration.tracks import one as hydrate_one
    from appview.views.plyr_tracks import track_dict
    from appview.views.xrpc_views import track_view

    await hostile_world(world)
    async with await connect(world.db_url) as conn:
        await conn.set_autocommit(True)
        rows = await (await conn.execute("SELECT id, uri FROM track ORDER BY id")).fetchall()
        assert len(rows) > 7
        body: dict[str, Any] = {"ver": 1, "src": LABELER, "uri": rows[0][1], "val": "!takedown",
                                "cts": "2026-11-24T12:00:00.000Z"}
        await append_labels(conn, [LabelEvent(LABELER, rows[0][1], "!takedown", body, "d2", "labels:test", None,
                                              True)])
        await Projector().catch_up(conn)
        for viewer in (None, FAN, ART):
            listed = await hydrate(conn, [r[0] for r in rows], viewer)
            by_id = {t.id: t for t in listed}
            visible = {r[0] for r in await (await conn.execute(
                f"SELECT t.id FROM track t WHERE {track_q.id_where().replace('%(id)s', 't.id')}")).fetchall()}
            for track_id, uri in rows:
                one = await hydrate_one(conn, track_q.uri_where(), {"uri": uri}, viewer)
                assert one == await hydrate_one(conn, track_q.id_where(), {"id": track_id}, viewer)
                if track_id not in visible:
                    assert one is None, (viewer, uri)
                    continue
                assert one is not None, (viewer, uri)
                # What both surfaces serve (the card carries timestamps as JSON text, hydration as datetimes).
                assert track_dict(one, viewer) == track_dict(by_id[track_id], viewer)
                assert track_view(one, viewer) == track_view(by_id[track_id], viewer)
        assert visible and visible != {r[0] for r in rows}  # the world hides some
        assert await hydrate_one(conn, track_q.id_where(), {"id": 2**70}, None) is None
