"""fm.plyr.play.* XRPC queries and the label-hiding predicate, served against a real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from appview.app import create_app
from appview.query.labels import hidden_by_labels
from appview.settings import AppviewSettings
from core.db.connect import connect
from ingester.eventlog.append import append_batch
from ingester.pipeline.labels import LabelIngest
from ingester.projection.runner import Projector
from ingester.verify.labels import LabelVerifier
from tests.ingester import events as ev
from tests.ingester.framekit import StaticResolver, random_plc
from tests.ingester.labelkit import Labeler, now_iso

ART = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
FAN = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
TRACK = "fm.plyr.track"


def _t(rkey: str) -> str:
    return f"at://{ART}/{TRACK}/{rkey}"


@pytest.fixture
async def client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    async with await connect(db_url) as conn:
        await append_batch(conn, [
            ev.identity(FAN, "fan.test"),
            ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222222a", ev.track("Song", artist="Nova")),
            *[ev.put(FAN, "fm.teal.feed.play", f"3kppppppp{'abc'[i]}222", f"3k222222223{'abc'[i]}b",
                     {"$type": "fm.teal.feed.play", "trackName": "Song", "artists": [{"artistName": "Nova"}],
                      "musicServiceUri": "https://plyr.fm", "playedTime": when}) for i in range(3)],
        ])
        await Projector().catch_up(conn)
    app = create_app(AppviewSettings(), db_url)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            yield c


async def test_play_queries(client: httpx.AsyncClient) -> None:
    hist = (await client.get("/xrpc/fm.plyr.play.getHistory", params={"actor": "fan.test", "limit": "2"})).json()
    assert len(hist["plays"]) == 2 and hist["plays"][0]["track"] == _t("3kaaaaaaaaa22") and "cursor" in hist
    more = (await client.get("/xrpc/fm.plyr.play.getHistory",
                             params={"actor": FAN, "cursor": hist["cursor"]})).json()
    assert len(more["plays"]) == 1 and "cursor" not in more
    top = (await client.get("/xrpc/fm.plyr.play.getTopTracks", params={"period": "week"})).json()
    assert top == {"tracks": [{"trackName": "Song", "artists": [{"artistName": "Nova"}], "plays": 3,
                               "track": _t("3kaaaaaaaaa22")}]}
    assert (await client.get("/xrpc/fm.plyr.play.getTopArtists", params={"actor": FAN})).json() == {
        "artists": [{"artistName": "Nova", "plays": 3}]}
    days = (await client.get("/xrpc/fm.plyr.play.getPlaysPerDay", params={"days": "2"})).json()["days"]
    assert sum(d["plays"] for d in days) == 3
    counts = (await client.get("/xrpc/fm.plyr.play.getPlayCounts",
                               params=[("uris", _t("3kaaaaaaaaa22")), ("uris", _t("3kzzzzzzzzz22"))])).json()
    assert counts == {"counts": [{"uri": _t("3kaaaaaaaaa22"), "plays": 3}, {"uri": _t("3kzzzzzzzzz22"), "plays": 0}]}
    assert (await client.get("/xrpc/fm.plyr.play.getNowPlaying", params={"actor": FAN})).json() == {"actor": FAN}


@pytest.mark.parametrize(("path", "params"), [
    ("getHistory", {}), ("getHistory", {"actor": "not a did"}), ("getHistory", {"actor": FAN, "limit": "0"}),
    ("getHistory", {"actor": FAN, "limit": "abc"}), ("getHistory", {"actor": FAN, "cursor": "%%%"}),
    ("getHistory", {"actor": FAN, "cursor": "bm90LWEtY3Vyc29y"}), ("getTopTracks", {"period": "decade"}),
    ("getPlaysPerDay", {"days": "99999"}), ("getPlayCounts", {}), ("getPlayCounts", {"uris": "https://x"}),
])
async def test_bad_parameters_get_a_400_envelope(client: httpx.AsyncClient, path: str,
                                                 params: dict[str, str]) -> None:
    r = await client.get(f"/xrpc/fm.plyr.play.{path}", params=params)
    assert r.status_code == 400 and set(r.json()) == {"error", "message"}


@pytest.mark.parametrize("path", ["getHistory", "getNowPlaying", "getTopTracks", "getTopArtists", "getPlaysPerDay"])
async def test_unknown_actor_is_404_as_in_every_namespace(client: httpx.AsyncClient, path: str) -> None:
    for actor in ("nobody.test", "did:plc:nobodyaaaaaaaaaaaaaaaaaa"):
        r = await client.get(f"/xrpc/fm.plyr.play.{path}", params={"actor": actor})
        assert r.status_code == 404 and r.json()["error"] == "ActorNotFound", (path, r.text)


@given(st.dictionaries(st.sampled_from(["actor", "limit", "cursor", "period", "days"]), st.text(max_size=30)))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_any_parameters_never_500(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    for path in ("getHistory", "getTopTracks", "getTopArtists", "getPlaysPerDay", "getNowPlaying"):
        r = await client.get(f"/xrpc/fm.plyr.play.{path}", params=params)
        assert r.status_code in (200, 400, 404), (path, params, r.text)


async def _visible(conn: psycopg.AsyncConnection, **kw: object) -> list[str]:
    query = sql.SQL("SELECT t.title FROM track t WHERE NOT {} ORDER BY t.title").format(hidden_by_labels("t", **kw))  # type: ignore[arg-type]
    async with conn.cursor() as cur:
        await cur.execute(query)
        rows = [r[0] for r in await cur.fetchall()]
    await conn.commit()
    return rows


async def test_hidden_by_labels_predicate(conn: psycopg.AsyncConnection) -> None:
    other = "did:plc:cccccccccccccccccccccccc"
    await append_batch(conn, [
        ev.put(ART, TRACK, "3kaaaaaaaaa22", "3k2222222222a", ev.track("clean")),
        ev.put(ART, TRACK, "3kbbbbbbbbb22", "3k2222222223a", ev.track("copyright")),
        ev.put(ART, TRACK, "3kccccccccc22", "3k2222222224a", ev.track("adult-op")),
        ev.put(ART, TRACK, "3kddddddddd22", "3k2222222225a",
               ev.track("adult-self", labels={"$type": "com.atproto.label.defs#selfLabels",
                                              "values": [{"val": "porn"}]})),
        ev.put(ART, TRACK, "3keeeeeeeee22", "3k2222222226a", ev.track("negated")),
        ev.put(ART, TRACK, "3kfffffffff22", "3k2222222227a", ev.track("expired")),
        ev.put(other, TRACK, "3kggggggggg22", "3k2222222222c", ev.track("account-takedown")),
    ])
    lb = Labeler(random_plc())
    ingest = LabelIngest(conn, source="labels:t", verifier=LabelVerifier(StaticResolver({lb.did: lb.doc()})))
    await ingest.handle(lb.frame([
        lb.label(_t("3kbbbbbbbbb22"), "copyright-violation"),
        lb.label(_t("3kccccccccc22"), "sexual"),
        lb.label(_t("3keeeeeeeee22"), "!takedown", cts=now_iso(timedelta(seconds=-5))),
        lb.label(_t("3keeeeeeeee22"), "!takedown", neg=True),
        lb.label(_t("3kfffffffff22"), "!hide", exp=now_iso(timedelta(seconds=-1))),
        lb.label(other, "!takedown"),
    ]))
    await Projector().catch_up(conn)
    await conn.commit()
    everywhere = ["adult-op", "adult-self", "clean", "expired", "negated"]
    assert await _visible(conn, context="view") == everywhere
    assert await _visible(conn, context="list") == ["clean", "expired", "negated"]
    assert await _visible(conn, context="list", show_adult=True) == everywhere
    assert await _visible(conn, context="list", viewer_did=ART) == everywhere  # the owner sees their own
