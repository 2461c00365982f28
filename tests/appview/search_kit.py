"""A small search world on top of the read-side test world (`tests/appview/world.py`): tracks and
lists by name, a client on the real app, and lexicon checks for the XRPC outputs."""

from __future__ import annotations

from typing import Any

import httpx

from core.lexicon import default_lexicons
from tests.appview import world
from tests.appview.world import client
from tests.ingester import events as ev

TRACK = "fm.plyr.track"
LIST = "fm.plyr.list"

__all__ = ["World", "client", "did", "titles", "validate_output"]


def did(name: str) -> str:
    return "did:plc:" + (name + "a" * 24)[:24]


class World(world.World):
    def track(self, who: str, title: str, artist: str = "artist", **extra: Any) -> str:
        return self.put(who, TRACK, ev.track(title, artist=artist, **extra))

    def plist(self, who: str, name: str, items: list[str], list_type: str) -> str:
        return self.put(who, LIST, ev.plist(items, name=name, list_type=list_type))


def validate_output(nsid: str, body: object) -> str | None:
    """None if `body` is a valid output of the query lexicon `nsid`."""
    return default_lexicons().validate_output(nsid, body)


async def titles(c: httpx.AsyncClient, q: str, **params: Any) -> list[str]:
    r = await c.get("/search/", params={"q": q, "type": "tracks", **params})
    assert r.status_code == 200, r.text
    return [x["title"] for x in r.json()["results"]]
