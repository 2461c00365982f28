"""Aggregates stay sane whatever valid records say: per-track durations are bounded in sums and every
total is an int64."""

from __future__ import annotations

from appview.query.artists import MAX_TRACK_DURATION_S
from tests.appview.world import ART, FAN, TRACK, World, client
from tests.ingester import events as ev

INT64_MAX = 2**63 - 1


async def test_absurd_durations_are_bounded_in_every_aggregate(db_url: str) -> None:
    w = World(db_url)
    w.actor(ART, "artist.test")
    w.actor(FAN, "fan.test")
    n = 40
    for i in range(n):
        w.put(ART, TRACK, ev.track(f"long {i}", duration=INT64_MAX))
    w.put(FAN, TRACK, ev.track("normal", duration=100))
    await w.flush()
    expected_art = n * MAX_TRACK_DURATION_S
    async with client(db_url) as http:
        stats = (await http.get("/stats")).json()
        assert stats["total_duration_seconds"] == expected_art + 100
        assert stats["total_tracks"] == n + 1
        analytics = (await http.get(f"/artists/{ART}/analytics")).json()
        assert analytics["total_duration_seconds"] == expected_art
        platform = (await http.get("/xrpc/fm.plyr.stats.getPlatformStats")).json()
        assert platform["durationSeconds"] == expected_art + 100
        artist = (await http.get("/xrpc/fm.plyr.stats.getArtistStats", params={"actor": ART})).json()
        assert artist["durationSeconds"] == expected_art
        for value in (stats["total_duration_seconds"], analytics["total_duration_seconds"]):
            assert 0 <= value <= INT64_MAX
        # the track itself still says what its record says
        page = (await http.get("/xrpc/fm.plyr.feed.getArtistTracks", params={"actor": ART, "limit": 100})).json()
        assert {t.get("duration") for t in page["tracks"]} == {INT64_MAX}
