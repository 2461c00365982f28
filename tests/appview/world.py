"""A small, fully known world appended to the log and projected, plus a client on the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from appview.app import create_app
from appview.settings import AppviewSettings
from core.db.connect import connect
from core.events import RecordEvent, RepoEvent
from ingester.eventlog.append import append_batch
from ingester.projection.runner import Projector
from tests.ingester import events as ev

ART = "did:plc:artistaaaaaaaaaaaaaaaaaa"
FAN = "did:plc:fanaaaaaaaaaaaaaaaaaaaaa"
FAN2 = "did:plc:fanbbbbbbbbbbbbbbbbbbbbb"
GONE = "did:plc:goneaaaaaaaaaaaaaaaaaaaa"

TRACK = "fm.plyr.track"


def tid(n: int) -> str:
    """A valid, increasing TID-shaped rev/rkey."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(11):
        out = alphabet[n % 32] + out
        n //= 32
    return "3k" + out


def uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


class World:
    """Builds events with increasing revs per repo; `flush` appends and projects them."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.pending: list[RecordEvent | RepoEvent] = []
        self.rev = 0

    def _next(self) -> str:
        self.rev += 1
        return tid(self.rev)

    def actor(self, did: str, handle: str) -> str:
        self.pending.append(ev.identity(did, handle))
        return did

    def put(self, did: str, collection: str, record: dict[str, Any], rkey: str | None = None,
            action: str = "create") -> str:
        rev = self._next()
        key = rkey or rev
        self.pending.append(ev.put(did, collection, key, rev, record, action=action))
        return uri(did, collection, key)

    def delete(self, at_uri: str) -> None:
        did, collection, rkey = at_uri[5:].split("/")
        self.pending.append(ev.delete(did, collection, rkey, self._next()))

    def account(self, did: str, active: bool, status: str | None = None) -> None:
        self.pending.append(ev.account(did, active, status))

    async def flush(self) -> None:
        async with await connect(self.db_url) as conn:
            await append_batch(conn, self.pending)
            await Projector().catch_up(conn)
        self.pending = []


@asynccontextmanager
async def client(db_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    # Uncached by default: these tests read their own writes at once (test_cache.py covers the cache).
    app = create_app(AppviewSettings(**({"response_cache": False} | settings)), db_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c
