"""A response cache for anonymous reads, as an ASGI middleware.

Anonymous GETs of the public read surfaces are identical for everyone until the projections move,
so a response is stored with the projector position it was computed at and served only while that
position is still current (and for at most `ttl_s`, for time-windowed queries such as "top this
week"). Under a busy firehose the position moves many times a second, so an entry may also outlive a
position change by `stale_s` (default 1 s): reads are then at most that stale, and the cache keeps
absorbing load.

The position is that of the database the request reads from (`Reads.position`: the primary's, or the
replica's its handler will read from — one target per request), taken before the handler reads, so an answer
is never stored under a position newer than its data. An entry at a newer position than the request's
replica is served (it is at least as fresh), and a lagging replica's answer never replaces a fresher entry.
Requests carrying Authorization (viewer state) are never cached.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import Counter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
PositionOf = Callable[[Scope], "int | None"]  # the request's read position (None: unknown, never cached)

CACHE = Counter("appview_response_cache_total", "Anonymous read responses by cache outcome", ["outcome"])
CACHEABLE = ("/tracks/", "/tracks", "/artists/", "/albums/", "/lists/", "/users/", "/search/", "/stats",
             "/activity/", "/oembed", "/xrpc/fm.plyr.", "/moderation/sensitive-images", "/config")
_MAX_BODY = 1 << 20


class ResponseCache:
    def __init__(self, app: ASGIApp, position_of: PositionOf, *, max_entries: int = 4096,
                 ttl_s: float = 60.0, stale_s: float = 1.0) -> None:
        self.app, self.position_of = app, position_of
        self.max_entries, self.ttl_s, self.stale_s = max_entries, ttl_s, stale_s
        # key → (position, stored at, headers, body, the route that computed it: a hit is labelled like a miss)
        self.entries: OrderedDict[tuple[str, bytes], tuple[int, float, list[tuple[bytes, bytes]], bytes, Any]] = \
            OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(CACHEABLE)
                or any(k == b"authorization" for k, _ in scope["headers"])):
            await self.app(scope, receive, send)
            return
        position = self.position_of(scope)  # fixes the request's read target: its handler reads there
        if position is None:
            await self.app(scope, receive, send)
            return
        key = (scope["path"], scope["query_string"])
        hit = self.entries.get(key)
        age = time.monotonic() - hit[1] if hit is not None else 0.0
        if hit is not None and age < self.ttl_s and (hit[0] >= position or age < self.stale_s):
            self.entries.move_to_end(key)
            CACHE.labels("hit").inc()
            scope["route"] = hit[4]
            # A copy: outer middleware (CORS) adds per-requester headers; the entry must never keep them.
            await send({"type": "http.response.start", "status": 200, "headers": list(hit[2])})
            await send({"type": "http.response.body", "body": hit[3]})
            return
        CACHE.labels("miss").inc()
        await self._fill(scope, receive, send, key, position)

    async def _fill(self, scope: Scope, receive: Receive, send: Send, key: tuple[str, bytes], position: int) -> None:
        state: dict[str, Any] = {"status": 0, "headers": [], "body": [], "size": 0}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["headers"] = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body" and state["status"] == 200:
                state["body"].append(message.get("body", b""))
                state["size"] += len(message.get("body", b""))
                if not message.get("more_body") and state["size"] <= _MAX_BODY:
                    self._store(key, position, state["headers"], b"".join(state["body"]), scope.get("route"))
            await send(message)

        await self.app(scope, receive, capture)

    def _store(self, key: tuple[str, bytes], position: int, headers: list[tuple[bytes, bytes]], body: bytes,
               route: Any) -> None:
        held = self.entries.get(key)
        if held is not None and held[0] > position and time.monotonic() - held[1] < self.ttl_s:
            return  # a lagging replica's answer must not replace a fresher one
        self.entries[key] = (position, time.monotonic(), headers, body, route)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
