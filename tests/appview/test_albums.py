"""Albums as plyr.fm makes them: a track's album name makes an album of its artist; an album list
record orders it (list order first, then the rest by createdAt) and names it."""

from __future__ import annotations

import re
import unicodedata

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appview.query.albums import slugify
from core.db.schema import list_, track
from tests.appview.world import ART, FAN, TRACK, World, client
from tests.ingester import events as ev


def plyr_slugify(text: str, max_length: int = 100) -> str:
    """plyr.fm's backend/src/backend/utilities/slugs.py, verbatim."""
    if not text:
        return ""
    slug = unicodedata.normalize("NFKD", text)
    slug = slug.encode("ascii", "ignore").decode("ascii")
    slug = slug.lower()
    slug = re.sub(r"[^a-z0-9\s-]", "", slug)
    slug = re.sub(r"\s+", "-", slug)
    slug = re.sub(r"-+", "-", slug)
    slug = slug.strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length]
        last_hyphen = slug.rfind("-")
        if last_hyphen > 0:
            slug = slug[:last_hyphen]
    return slug


def at(n: int) -> str:
    return f"2026-10-{n:02d}T10:00:00.000Z"


TEXTS = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=130)
EDGES = ["My Album", "Album (Deluxe Edition)", "Test   Multiple   Spaces", "tūnņg", "Études pour dac", "Don't Stop",
         "", "!!!", "日本語", " -a- ", "a\x1cb", "a\u00a0b", "ﬁ ligature", "x" * 99 + " y" * 10, "-" * 120,
         ("word " * 30).strip(), "a" * 150]


def test_slugify_is_plyrs_with_untitled_for_nothing() -> None:
    for text in EDGES:
        assert slugify(text) == (plyr_slugify(text) or "untitled"), text


@given(TEXTS)
def test_slugify_matches_plyr_on_any_text(text: str) -> None:
    assert slugify(text) == (plyr_slugify(text) or "untitled")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(TEXTS, min_size=1, max_size=20))
def test_sql_slug_equals_python_slug(db_url: str, texts: list[str]) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT x, public.plyr_slug(x) FROM unnest(%s::text[]) AS u(x)",
                            (texts + EDGES,)).fetchall()
    for text, slug in rows:
        assert slug == slugify(text), (text, slug)


def test_migration_0014_matches_the_schema(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        for table in (track, list_):
            cols = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                                "ORDER BY ordinal_position", (table.name,)).fetchall()
            assert [c for (c,) in cols] == [c.name for c in table.columns], table.name
            indexes = {r for (r,) in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s",
                                                  (table.name,)).fetchall()}
            assert {ix.name for ix in table.indexes} <= indexes, table.name
        got = conn.execute("SELECT album_slug FROM (SELECT NULL::text AS album) a, LATERAL (SELECT CASE WHEN "
                           "btrim(a.album) <> '' THEN public.plyr_slug(a.album) END AS album_slug) s").fetchone()
        assert got == (None,)


async def test_albums_from_track_names_without_a_list_record(db_url: str) -> None:
    w = World(db_url)
    w.actor(ART, "artist.test")
    w.actor(FAN, "fan.test")
    a2 = w.put(ART, TRACK, ev.track("two", album="Don't Stop", createdAt=at(2), artist="The Artist",
                                    imageUrl="https://images.plyr.fm/images/two.jpg"))
    a1 = w.put(ART, TRACK, ev.track("one", album="Don't Stop", createdAt=at(1), artist="The Artist"))
    w.put(ART, TRACK, ev.track("three", album="don't  stop!", createdAt=at(3), artist="The Artist"))  # same slug
    w.put(ART, TRACK, ev.track("single", createdAt=at(4), artist="The Artist"))
    w.put(FAN, TRACK, ev.track("theirs", album="Don't Stop", createdAt=at(5)))  # another artist's album
    await w.flush()
    async with client(db_url) as http:
        feed = {t["title"]: t for t in (await http.get("/tracks/")).json()["tracks"]}
        assert feed["one"]["album"]["slug"] == "dont-stop" and feed["one"]["album"]["title"] == "Don't Stop"
        assert feed["one"]["album"]["id"] == feed["two"]["album"]["id"] == feed["three"]["album"]["id"]
        assert feed["single"]["album"] is None
        assert feed["theirs"]["album"]["id"] != feed["one"]["album"]["id"]
        mine = (await http.get("/albums/artist.test")).json()["albums"]
        assert [(a["title"], a["slug"], a["track_count"]) for a in mine] == [("Don't Stop", "dont-stop", 3)]
        assert mine[0]["image_url"] == "https://images.plyr.fm/images/two.jpg"
        page = (await http.get("/albums/artist.test/dont-stop")).json()
        assert [t["title"] for t in page["tracks"]] == ["one", "two", "three"]  # no list record: by createdAt
        assert page["metadata"]["list_uri"] is None and page["metadata"]["id"] == mine[0]["id"]
        everyone = (await http.get("/albums/")).json()["albums"]
        assert sorted((a["artist_handle"], a["slug"]) for a in everyone) == [("artist.test", "dont-stop"),
                                                                             ("fan.test", "dont-stop")]
        embed = await http.get("/oembed", params={"url": "https://plyr.fm/u/artist.test/album/dont-stop"})
        assert embed.status_code == 200 and embed.json()["title"] == "Don't Stop"
        albums = (await http.get("/xrpc/fm.plyr.actor.getAlbums", params={"actor": ART})).json()["lists"]
        assert len(albums) == 1 and "uri" not in albums[0] and albums[0]["slug"] == "dont-stop"
        assert albums[0]["trackCount"] == 3
        by_slug = (await http.get("/xrpc/fm.plyr.feed.getAlbumTracks",
                                  params={"actor": "artist.test", "slug": "dont-stop", "limit": 2})).json()
        assert [t["uri"] for t in by_slug["tracks"]] == [a1, a2] and by_slug["cursor"] == "2"
        assert by_slug["tracks"][0]["album"]["slug"] == "dont-stop" and "uri" not in by_slug["tracks"][0]["album"]
        prof = (await http.get("/xrpc/fm.plyr.actor.getProfile", params={"actor": ART})).json()
        assert prof["albumCount"] == 1
        r = await http.get("/xrpc/fm.plyr.feed.getAlbumTracks", params={"actor": ART, "slug": "nope"})
        assert r.status_code == 404 and r.json()["error"] == "NotFound"
        r = await http.get("/xrpc/fm.plyr.feed.getAlbumTracks", params={"actor": ART})
        assert r.status_code == 400 and r.json()["error"] == "InvalidRequest"


async def test_a_list_record_orders_and_names_the_album(db_url: str) -> None:
    w = World(db_url)
    w.actor(ART, "artist.test")
    t1 = w.put(ART, TRACK, ev.track("one", album="night tapes", createdAt=at(1)))
    t2 = w.put(ART, TRACK, ev.track("two", album="Night Tapes", createdAt=at(2)))
    t3 = w.put(ART, TRACK, ev.track("three", album="Night Tapes", createdAt=at(3)))  # not in the record
    t0 = w.put(ART, TRACK, ev.track("zero", album="Night Tapes", createdAt=at(1)))  # not in the record either
    t4 = w.put(ART, TRACK, ev.track("four", createdAt=at(4)))  # no album name, listed: belongs
    t5 = w.put(ART, TRACK, ev.track("five", album="Other", createdAt=at(5)))  # listed, names another album
    album = w.put(ART, "fm.plyr.list", ev.plist([t2, t4, t1, t5, t2], name="Night Tapes", list_type="album"))
    await w.flush()
    async with client(db_url) as http:
        page = (await http.get("/albums/artist.test/night-tapes")).json()
        # list order first (a track listed twice at its first place), then the rest by createdAt
        assert [t["title"] for t in page["tracks"]] == ["two", "four", "one", "zero", "three"]
        assert page["metadata"]["list_uri"] == album and page["metadata"]["title"] == "Night Tapes"
        x = (await http.get("/xrpc/fm.plyr.feed.getAlbumTracks", params={"uri": album})).json()
        assert [t["uri"] for t in x["tracks"]] == [t2, t4, t1, t0, t3]
        assert x["list"]["uri"] == album and x["list"]["trackCount"] == 5
        titles = {a["slug"]: a for a in (await http.get("/albums/artist.test")).json()["albums"]}
        assert set(titles) == {"night-tapes", "other"} and titles["other"]["track_count"] == 1
        feed = {t["title"]: t["album"] for t in (await http.get("/tracks/")).json()["tracks"]}
        assert {feed[n]["id"] for n in ("zero", "one", "two", "three", "four")} == {titles["night-tapes"]["id"]}
        assert feed["five"]["slug"] == "other"
        xt = (await http.get("/xrpc/fm.plyr.track.getTrack", params={"uri": t3})).json()["track"]
        assert xt["album"]["uri"] == album and xt["album"]["slug"] == "night-tapes"
