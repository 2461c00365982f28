"""HTTP surfaces of search: plyr.fm's `GET /search/` and the `fm.plyr.search.*` XRPC queries.

Parameters are taken as raw strings and parsed here, so every bad value gets a 400 in the
surface's own error dialect (`{"detail"}` for REST, `{"error", "message"}` for XRPC).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Histogram
from psycopg import AsyncConnection

from appview.deps import read_connection
from appview.search import models
from appview.search import query as sq
from appview.search.text import BadSearchParam, parse_int, parse_q, parse_types

SEARCH_SECONDS = Histogram("appview_search_seconds", "Search request time (database and views)",
                           ["surface"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1))
log = structlog.get_logger(__name__)
SLOW_S = 0.1  # logged, with the query's shape (not its text)
XRPC_LIMIT_MAX = 100
XRPC_OFFSET_MAX = 10_000  # offset cursors: deeper pages of a relevance ranking are noise

ViewerOf = Callable[[Request], Awaitable[str | None]]


async def anonymous(request: Request) -> str | None:
    return None


def _observe(surface: str, started: float, q: str, types: tuple[str, ...]) -> None:
    elapsed = time.perf_counter() - started
    SEARCH_SECONDS.labels(surface).observe(elapsed)
    if elapsed > SLOW_S:
        log.warning("search.slow", surface=surface, ms=round(elapsed * 1000, 1), q_chars=len(q),
                    q_words=len(q.split()), types=",".join(types))


def _xrpc_error(message: str) -> JSONResponse:
    return JSONResponse({"error": "InvalidRequest", "message": message}, status_code=400)


def _page(hits: list[Any], offset: int, limit: int) -> tuple[list[Any], str | None]:
    page = hits[offset:offset + limit]
    more = len(hits) > offset + limit
    return page, (str(offset + limit) if more else None)


async def rest_search(conn: AsyncConnection, q: str, types: tuple[str, ...], limit: int,
                      viewer: str | None) -> models.SearchResponse:
    query = await sq.normalise(conn, q, viewer)
    counts = models.SearchCounts()
    if not query.norm:  # nothing searchable survived normalisation (e.g. only quotes)
        return models.SearchResponse(results=[], counts=counts)
    # tags: plyr.fm keeps tags in its own database; no record carries them, so there are none.
    plan: list[tuple[str, sq.Statement, Callable[[Any], models.SearchResult]]] = []
    if "tracks" in types:
        plan.append(("tracks", sq.track_statement(query, limit), models.rest_track))
    if "artists" in types:
        plan.append(("artists", sq.artist_statement(query, limit), models.rest_artist))
    if "albums" in types:
        plan.append(("albums", sq.list_statement(query, limit, ("album",)), models.rest_album))
    if "playlists" in types:
        plan.append(("playlists", sq.list_statement(query, limit, ("playlist",)), models.rest_playlist))
    results: list[models.SearchResult] = []
    for (kind, _, view), hits in zip(plan, await sq.run(conn, [p[1] for p in plan]), strict=True):
        results.extend(view(h) for h in hits)
        setattr(counts, kind, len(hits))
    results.sort(key=lambda r: r.relevance, reverse=True)  # stable: ties keep the type order
    return models.SearchResponse(results=results, counts=counts)


def search_router(viewer_of: ViewerOf = anonymous) -> APIRouter:
    router = APIRouter(tags=["search"])

    @router.get("/search/", response_model=models.SearchResponse)
    async def unified_search(request: Request, q: str | None = None, type: str | None = None,
                             limit: str | None = None) -> models.SearchResponse | JSONResponse:
        """plyr.fm's unified search: `q` 2–100 characters, `type` a comma list of tracks, artists,
        albums, tags, playlists (default all), `limit` 1–50 per type (default 20)."""
        started = time.perf_counter()
        try:
            text, types, n = parse_q(q), parse_types(type), parse_int("limit", limit, 20, 1, 50)
        except BadSearchParam as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        viewer = await viewer_of(request)
        async with read_connection(request) as conn, conn.transaction():
            out = await rest_search(conn, text, types, n, viewer)
        _observe("rest", started, text, types)
        return out

    async def _xrpc_params(q: str | None, limit: str | None, cursor: str | None) -> tuple[str, int, int]:
        return (parse_q(q), parse_int("limit", limit, 25, 1, XRPC_LIMIT_MAX),
                parse_int("cursor", cursor, 0, 0, XRPC_OFFSET_MAX))

    @router.get("/xrpc/fm.plyr.search.searchTracks", response_model=models.SearchTracksOutput,
                response_model_exclude_none=True)
    async def search_tracks(request: Request, q: str | None = None, limit: str | None = None,
                            cursor: str | None = None) -> models.SearchTracksOutput | JSONResponse:
        started = time.perf_counter()
        try:
            text, n, offset = await _xrpc_params(q, limit, cursor)
        except BadSearchParam as exc:
            return _xrpc_error(str(exc))
        viewer = await viewer_of(request)
        async with read_connection(request) as conn, conn.transaction():
            query = await sq.normalise(conn, text, viewer)
            hits = await sq.search_tracks(conn, query, offset + n + 1) if query.norm else []
        page, next_cursor = _page(hits, offset, n)
        _observe("xrpc", started, text, ("tracks",))
        return models.SearchTracksOutput(cursor=next_cursor, tracks=[models.xrpc_track(h) for h in page])

    @router.get("/xrpc/fm.plyr.search.searchArtists", response_model=models.SearchArtistsOutput,
                response_model_exclude_none=True)
    async def search_artists(request: Request, q: str | None = None, limit: str | None = None,
                             cursor: str | None = None) -> models.SearchArtistsOutput | JSONResponse:
        started = time.perf_counter()
        try:
            text, n, offset = await _xrpc_params(q, limit, cursor)
        except BadSearchParam as exc:
            return _xrpc_error(str(exc))
        async with read_connection(request) as conn, conn.transaction():
            query = await sq.normalise(conn, text)
            hits = await sq.search_artists(conn, query, offset + n + 1) if query.norm else []
        page, next_cursor = _page(hits, offset, n)
        _observe("xrpc", started, text, ("artists",))
        return models.SearchArtistsOutput(cursor=next_cursor, artists=[models.xrpc_artist(h) for h in page])

    @router.get("/xrpc/fm.plyr.search.searchLists", response_model=models.SearchListsOutput,
                response_model_exclude_none=True)
    async def search_lists(request: Request, q: str | None = None, limit: str | None = None,
                           cursor: str | None = None, listType: str | None = None,  # noqa: N803
                           ) -> models.SearchListsOutput | JSONResponse:
        started = time.perf_counter()
        try:
            text, n, offset = await _xrpc_params(q, limit, cursor)
            if listType not in (None, "", "album", "playlist"):
                raise BadSearchParam("listType: must be album or playlist")
        except BadSearchParam as exc:
            return _xrpc_error(str(exc))
        kinds: tuple[sq.ListKind, ...] = (listType,) if listType in ("album", "playlist") else ("album", "playlist")  # type: ignore[assignment]
        async with read_connection(request) as conn, conn.transaction():
            query = await sq.normalise(conn, text)
            hits = await sq.search_lists(conn, query, offset + n + 1, kinds) if query.norm else []
        page, next_cursor = _page(hits, offset, n)
        _observe("xrpc", started, text, kinds)
        return models.SearchListsOutput(cursor=next_cursor, lists=[models.xrpc_list(h) for h in page])

    return router
