"""A small search world: events appended to the log and folded by the real projector, a client on the
real app, and lexicon checks for the XRPC outputs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from appview.app import create_app
from appview.settings import AppviewSettings
from core import lexicon
from core.db.connect import connect
from core.events import RecordEvent, RepoEvent
from ingester.eventlog.append import append_batch
from ingester.projection.runner import Projector
from tests.ingester import events as ev

TRACK = "fm.plyr.track"
LIST = "fm.plyr.list"
_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def tid(n: int) -> str:
    out = ""
    for _ in range(11):
        out = _ALPHABET[n % 32] + out
        n //= 32
    return "3k" + out


def did(name: str) -> str:
    return "did:plc:" + (name + "a" * 24)[:24]


class World:
    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.pending: list[RecordEvent | RepoEvent] = []
        self.rev = 0

    def _next(self) -> str:
        self.rev += 1
        return tid(self.rev)

    def actor(self, who: str, handle: str) -> str:
        self.pending.append(ev.identity(who, handle))
        return who

    def track(self, who: str, title: str, artist: str = "artist", **extra: Any) -> str:
        rev = self._next()
        self.pending.append(ev.put(who, TRACK, rev, rev, ev.track(title, artist=artist, **extra)))
        return f"at://{who}/{TRACK}/{rev}"

    def plist(self, who: str, name: str, items: list[str], list_type: str) -> str:
        rev = self._next()
        self.pending.append(ev.put(who, LIST, rev, rev, ev.plist(items, name=name, list_type=list_type)))
        return f"at://{who}/{LIST}/{rev}"

    def account(self, who: str, active: bool, status: str | None = None) -> None:
        self.pending.append(ev.account(who, active, status))

    async def flush(self) -> None:
        async with await connect(self.db_url) as conn:
            await append_batch(conn, self.pending)
            await Projector().catch_up(conn)
        self.pending = []


@asynccontextmanager
async def client(db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(AppviewSettings(response_cache=False), db_url)  # reads its own writes at once
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def _output_validator(nsid: str) -> lexicon.Validator:
    docs = [*lexicon.BUILTIN_LEXICONS,
            *(json.loads(p.read_text(encoding="utf-8")) for p in sorted(lexicon.LEXICON_DIR.rglob("*.json")))]
    defs = {lexicon._norm_ref(f"{d['id']}#{name}", d["id"]): (d["id"], body)
            for d in docs for name, body in d.get("defs", {}).items()}
    compiler = lexicon._Compiler(defs)
    for name, (_, body) in defs.items():  # refs resolve against compiled defs, as LexiconSet does
        if body.get("type") in lexicon._KINDS:
            compiler.ref(name)
    return compiler.compile(defs[nsid][1]["output"]["schema"], nsid)


def validate_output(nsid: str, body: object) -> str | None:
    """None if `body` is a valid output of the query lexicon `nsid`."""
    checker = getattr(lexicon.default_lexicons(), "validate_output", None)
    if checker is not None:  # the read side's own helper, once merged
        return checker(nsid, body)  # type: ignore[no-any-return]
    return _output_validator(nsid)(body)


async def titles(c: httpx.AsyncClient, q: str, **params: Any) -> list[str]:
    r = await c.get("/search/", params={"q": q, "type": "tracks", **params})
    assert r.status_code == 200, r.text
    return [x["title"] for x in r.json()["results"]]
