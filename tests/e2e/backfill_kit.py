"""Helpers for the backfill tests: extra databases, a world of writes, and digest comparisons."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg

from core.db.connect import connect
from ingester.projection.digest import Digest, digest
from ingester.projection.runner import Projector
from tests.conftest import _with_db
from tests.localnet.peer import Account, Xrpc

NOW = "2026-11-24T12:00:00.000Z"


@asynccontextmanager
async def fresh_db(pg_server_url: str, template_db: str) -> AsyncIterator[str]:
    name = f"appview_bf_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(pg_server_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        yield _with_db(pg_server_url, name)
    finally:
        async with await psycopg.AsyncConnection.connect(pg_server_url, autocommit=True) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def handle(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}.test"


def track(title: str, **extra: Any) -> dict[str, Any]:
    return {"$type": "fm.plyr.track", "title": title, "artist": "Band", "fileType": "mp3",
            "audioUrl": f"https://audio.plyr.fm/{uuid.uuid4().hex[:8]}.mp3", "createdAt": NOW, **extra}


def rkey(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


class World:
    """Writes to the real PDS: creates, updates and deletes in every collection, over several accounts."""

    def __init__(self, xrpc: Xrpc, accounts: Sequence[Account]) -> None:
        self.xrpc, self.accounts = xrpc, list(accounts)
        self.tracks: dict[str, list[dict[str, Any]]] = {a.did: [] for a in accounts}

    async def phase(self, n: int) -> None:
        x = self.xrpc
        for i, a in enumerate(self.accounts):
            mine = self.tracks[a.did]
            for k in range(3):
                mine.append(await x.create(a, "fm.plyr.track", track(f"p{n} a{i} t{k}")))
            await x.put(a, "fm.plyr.track", rkey(mine[-1]["uri"]), track(f"p{n} a{i} t2 (edit)"))
            await x.put(a, "fm.plyr.actor.profile", "self",
                        {"$type": "fm.plyr.actor.profile", "bio": f"bio {n}", "createdAt": NOW})
            other = self.tracks[self.accounts[(i + 1) % len(self.accounts)].did] or mine
            target = other[-1]
            like = await x.create(a, "fm.plyr.like", {"$type": "fm.plyr.like", "createdAt": NOW,
                                                      "subject": {"uri": target["uri"], "cid": target["cid"]}})
            await x.create(a, "fm.plyr.comment", {"$type": "fm.plyr.comment", "text": f"nice {n}", "timestampMs": 10,
                                                  "createdAt": NOW,
                                                  "subject": {"uri": target["uri"], "cid": target["cid"]}})
            await x.create(a, "fm.plyr.list", {"$type": "fm.plyr.list", "name": f"album {n}", "listType": "album",
                                               "createdAt": NOW,
                                               "items": [{"subject": {"uri": t["uri"], "cid": t["cid"]}}
                                                         for t in mine[-3:]]})
            # deletes: the oldest track still standing, and (every other phase) the like just made
            victim = mine.pop(0)
            await x.delete(a, "fm.plyr.track", rkey(victim["uri"]))
            if n % 2 == 0:
                await x.delete(a, "fm.plyr.like", rkey(like["uri"]))
            await x.apply_writes(a, [
                {"$type": "com.atproto.repo.applyWrites#create", "collection": "fm.plyr.track",
                 "value": track(f"p{n} a{i} batch")},
                {"$type": "com.atproto.repo.applyWrites#delete", "collection": "fm.plyr.track",
                 "rkey": rkey(mine.pop(0)["uri"])},
            ])


async def content_digest(url: str) -> Digest:
    async with await connect(url) as conn:
        d = await digest(conn, "content")
        await conn.commit()
    return d


async def project(url: str) -> None:
    async with await connect(url) as conn:
        await Projector().catch_up(conn)


async def same_digest(urls: Sequence[str], *, timeout: float = 60.0) -> Digest:
    """Poll until every database shows the same content digest (ingest is asynchronous)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        digests = [await content_digest(u) for u in urls]
        if all(d.sha256 == digests[0].sha256 for d in digests):
            return digests[0]
        if asyncio.get_running_loop().time() > deadline:
            rendered = "\n\n".join(d.render() for d in digests)
            raise AssertionError(f"digests differ:\n{rendered}")
        await asyncio.sleep(0.2)
