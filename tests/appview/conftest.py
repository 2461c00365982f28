"""The read-side world fixture: a small, fully known world, appended and projected."""

from __future__ import annotations

import pytest

from tests.appview.world import ART, FAN, FAN2, TRACK, World
from tests.ingester import events as ev


def at(n: int) -> str:
    return f"2026-11-{n:02d}T10:00:00.000Z"


@pytest.fixture
async def world(db_url: str) -> World:
    w = World(db_url)
    w.actor(ART, "artist.test")
    w.actor(FAN, "fan.test")
    w.actor(FAN2, "fan2.test")
    w.put(ART, "fm.plyr.actor.profile", ev.profile("i make sounds") | {"avatar": "https://cdn.example/a.jpg"},
          rkey="self")
    w.t1 = w.put(ART, TRACK, ev.track("first light", createdAt=at(1), artist="The Artist", duration=120,
                                       imageUrl="https://images.plyr.fm/images/abc123.jpg"))
    w.t2 = w.put(ART, TRACK, ev.track("second wind", createdAt=at(2), artist="The Artist", duration=60,
                                       features=[{"did": FAN, "handle": "fan.test"}]))
    w.t3 = w.put(ART, TRACK, ev.track("adult thing", createdAt=at(3), artist="The Artist",
                                       labels={"$type": "com.atproto.label.defs#selfLabels",
                                               "values": [{"val": "porn"}]}))
    for fan in (FAN, FAN2):
        w.put(fan, "fm.plyr.like", ev.like(w.t1))
    w.put(FAN, "fm.plyr.like", ev.like(w.t1))  # a duplicate like record counts once
    w.put(FAN, "fm.plyr.like", ev.like(w.t2))
    w.put(FAN2, "fm.plyr.comment", ev.comment(w.t1, "late", ms=9000))
    w.put(FAN, "fm.plyr.comment", ev.comment(w.t1, "early", ms=1000))
    w.album = w.put(ART, "fm.plyr.list", ev.plist([w.t2, w.t1], name="Night Tapes", list_type="album"))
    w.playlist = w.put(FAN, "fm.plyr.list", ev.plist([w.t1, w.t3], name="mix"))
    await w.flush()
    return w


