"""URL hygiene: only public https URLs (or our /audio path) from record data are ever served."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appview.views.urls import MAX_URL_LENGTH, safe_url, unsafe_reason
from tests.appview.world import ART, TRACK, World, client
from tests.ingester import events as ev

GOOD = [
    "https://images.plyr.fm/images/abc123.jpg",
    "https://pub-d4ed8efcca4d4ab2b1b9f6c9d1b5a6e1.r2.dev/audio/5f3a.mp3",
    "HTTPS://CDN.Example.com/x.png",
    "https://cdn.example:8443/a?b=c#d",
    "https://8.8.8.8/x",
    "/audio/bafkreiabc",
]
BAD = {
    "javascript:alert(1)": "scheme",
    "JaVaScRiPt:alert(1)": "scheme",
    "data:text/html;base64,PHNjcmlwdD4=": "scheme",
    "gopher://example.com/": "scheme",
    "http://example.com/a.mp3": "scheme",
    "http://169.254.169.254/latest/meta-data/": "scheme",
    "https://169.254.169.254/latest/meta-data/": "private_ip",
    "https://127.0.0.1/": "private_ip",
    "https://10.0.0.1/": "private_ip",
    "https://[::1]/": "private_ip",
    "https://[fe80::1]/": "private_ip",
    "https://2852039166/": "bad_host",
    "https://0xa9.0xfe.0xa9.0xfe/": "numeric_host",
    "https://169.254.169.254.nip/": None,  # a DNS name: the gate judges names, not what they resolve to
    "https://localhost/": "bad_host",
    "https://foo.localhost/": "local_host",
    "https://metadata.internal/": "local_host",
    "https://user:pw@example.com/": "credentials",
    "https://example.com@evil.com/": "credentials",
    "https://exa mple.com/": "bad_characters",
    "java\nscript:alert(1)": "bad_characters",
    "https://evil.com\\@good.com/": "bad_characters",
    "https:///x": "no_host",
    "https://example.com:99999/": "malformed",
    "//evil.com/x": "relative",
    "/tracks/1": "relative",
    "https://" + "a" * MAX_URL_LENGTH + ".com/": "too_long",
    "https://exämple.com/": "bad_host",
}


@pytest.mark.parametrize("url", GOOD)
def test_safe_urls_pass(url: str) -> None:
    assert safe_url(url) == url


@pytest.mark.parametrize(("url", "reason"), BAD.items())
def test_unsafe_urls_are_withheld_with_a_reason(url: str, reason: str | None) -> None:
    assert unsafe_reason(url) == reason
    assert (safe_url(url) is None) == (reason is not None)


def test_non_strings_are_withheld() -> None:
    for value in (None, "", 3, b"https://x.com", ["https://x.com"], {"url": "https://x.com"}):
        assert safe_url(value) is None


@given(st.text(max_size=300) | st.from_regex(r"[a-zA-Z]{0,8}:[^\s]{0,40}", fullmatch=True)
       | st.builds(lambda h, p: f"https://{h}/{p}", st.text(max_size=40), st.text(max_size=20)))
def test_random_strings_never_yield_a_non_https_url(raw: str) -> None:
    out = safe_url(raw)
    if out is None:
        return
    assert out == raw
    if out.startswith("/"):
        assert out.startswith("/audio/") and "/" not in out[len("/audio/"):]
        return
    parts = urlsplit(out)
    assert parts.scheme.lower() == "https" and parts.hostname and "@" not in parts.netloc
    assert not any(c.isspace() or ord(c) < 0x20 for c in out)


HOSTILE = ["javascript:alert(document.cookie)", "data:audio/mpeg;base64,AAAA", "gopher://x.example/",
           "http://169.254.169.254/latest/meta-data/iam", "https://169.254.169.254/x"]


async def test_hostile_urls_in_records_are_never_served(db_url: str) -> None:
    w = World(db_url)
    w.actor(ART, "artist.test")
    w.put(ART, "fm.plyr.actor.profile", ev.profile("hi") | {"avatar": HOSTILE[0]}, rkey="self")
    tracks = [w.put(ART, TRACK, ev.track(f"t{i}", audioUrl=bad, imageUrl=HOSTILE[(i + 1) % len(HOSTILE)],
                                         artist="A", album="Evil"))
              for i, bad in enumerate(HOSTILE)]
    w.put(ART, "fm.plyr.list", ev.plist(tracks, name="Evil", list_type="album"))
    w.put(ART, "fm.plyr.list", ev.plist(tracks, name="mix"))
    await w.flush()
    async with client(db_url) as http:
        bodies = [(await http.get(p)).text for p in (
            "/tracks/", f"/artists/{ART}", "/albums/", "/albums/artist.test", "/albums/artist.test/evil",
            "/activity/", "/search/?q=t0", "/lists/playlists/by-artist/" + ART,
            "/xrpc/fm.plyr.feed.getLatest", f"/xrpc/fm.plyr.actor.getProfile?actor={ART}",
            f"/xrpc/fm.plyr.feed.getArtistTracks?actor={ART}", f"/xrpc/fm.plyr.actor.getAlbums?actor={ART}",
            "/xrpc/fm.plyr.search.searchTracks?q=t0",
        )]
        events = (await http.get("/xrpc/fm.plyr.sync.getEvents?hydrate=true")).json()["events"]
        hydrated = [e["hydrated"] for e in events if e.get("hydrated")]
        assert hydrated
        bodies.append(json.dumps(hydrated))
        for t in (await http.get("/tracks/")).json()["tracks"]:
            assert t["r2_url"] is None and t["image_url"] is None and t["artist_avatar_url"] is None
            bodies.append((await http.get(f"/tracks/{t['id']}")).text)
            embed = (await http.get("/oembed", params={"url": f"https://plyr.fm/track/{t['id']}"})).json()
            assert embed["thumbnail_url"] is None
    for body in bodies:
        for bad in HOSTILE:
            assert bad not in body, body
