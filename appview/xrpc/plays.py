"""XRPC queries over teal.fm plays: `fm.plyr.play.*` (lexicons in lexicons/fm/plyr/play/).

getHistory, getTopTracks, getTopArtists, getPlaysPerDay, getNowPlaying, getPlayCounts. Bad
parameters give the XRPC error envelope with status 400, never a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection

from appview.deps import read_connection
from appview.errors import ReadError, xrpc_status
from appview.query import plays
from appview.query.actors import resolve
from core import syntax

Period = Literal["day", "week", "month", "year", "all"]
PERIODS: dict[str, timedelta | None] = {
    "day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30),
    "year": timedelta(days=365), "all": None,
}
router = APIRouter()


async def _conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with read_connection(request) as conn:
        yield conn


Conn = Annotated[AsyncConnection, Depends(_conn)]


class XrpcError(Exception):
    def __init__(self, error: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error, self.message, self.status = error, message, status or xrpc_status(error)


def error_response(e: XrpcError) -> JSONResponse:
    return JSONResponse({"error": e.error, "message": e.message}, status_code=e.status)


async def _actor_did(conn: AsyncConnection, actor: str | None, *, required: bool) -> str | None:
    """The actor's DID, resolved as every namespace does (`query.actors.resolve`): unknown, deleted and
    inactive accounts are 404 ActorNotFound, as in fm.plyr.actor.* — never an empty 200."""
    if actor is None or actor == "":
        if required:
            raise XrpcError("InvalidRequest", "actor is required")
        return None
    if not (syntax.is_did(actor) or syntax.is_handle(actor)):
        raise XrpcError("InvalidRequest", "actor must be a DID or a handle")
    try:
        return (await resolve(conn, actor)).did
    except ReadError as e:
        raise XrpcError(e.name, e.message) from None


def _window(did: str | None, period: str) -> plays.Window:
    if period not in PERIODS:
        raise XrpcError("InvalidRequest", f"period must be one of {', '.join(PERIODS)}")
    span = PERIODS[period]
    return plays.Window(did=did, since=datetime.now(UTC) - span if span else None)


def _limit(value: str | None, default: int, maximum: int = 100, name: str = "limit") -> int:
    # Parsed here rather than by FastAPI so a bad value gets the XRPC error envelope (400), not a 422.
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= maximum:
        raise XrpcError("InvalidRequest", f"{name} must be an integer between 1 and {maximum}")
    return int(value)


async def _answer(body: Any) -> Any:
    try:
        return await body
    except XrpcError as e:
        return error_response(e)
    except plays.BadCursor as e:
        return error_response(XrpcError("InvalidRequest", str(e)))


@router.get("/xrpc/fm.plyr.play.getHistory")
async def get_history(conn: Conn, actor: str | None = None, limit: str | None = None, cursor: str | None = None) -> Any:
    async def run() -> dict[str, Any]:
        did = await _actor_did(conn, actor, required=True)
        assert did is not None
        items, next_cursor = await plays.history(conn, did, limit=_limit(limit, 50), cursor=cursor)
        return {"plays": items, **({"cursor": next_cursor} if next_cursor else {})}
    return await _answer(run())


@router.get("/xrpc/fm.plyr.play.getTopTracks")
async def get_top_tracks(conn: Conn, actor: str | None = None, period: str = "all", limit: str | None = None) -> Any:
    async def run() -> dict[str, Any]:
        window = _window(await _actor_did(conn, actor, required=False), period)
        return {"tracks": await plays.top_tracks(conn, window, limit=_limit(limit, 20))}
    return await _answer(run())


@router.get("/xrpc/fm.plyr.play.getTopArtists")
async def get_top_artists(conn: Conn, actor: str | None = None, period: str = "all", limit: str | None = None) -> Any:
    async def run() -> dict[str, Any]:
        window = _window(await _actor_did(conn, actor, required=False), period)
        return {"artists": await plays.top_artists(conn, window, limit=_limit(limit, 20))}
    return await _answer(run())


@router.get("/xrpc/fm.plyr.play.getPlaysPerDay")
async def get_plays_per_day(conn: Conn, actor: str | None = None, days: str | None = None) -> Any:
    async def run() -> dict[str, Any]:
        did = await _actor_did(conn, actor, required=False)
        span = _limit(days, 30, 3660, name="days")
        since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=span - 1)
        return {"days": await plays.plays_per_day(conn, plays.Window(did=did, since=since))}
    return await _answer(run())


@router.get("/xrpc/fm.plyr.play.getNowPlaying")
async def get_now_playing(conn: Conn, actor: str | None = None) -> Any:
    async def run() -> dict[str, Any]:
        did = await _actor_did(conn, actor, required=True)
        assert did is not None
        status = await plays.now_playing(conn, did)
        return {"actor": did, **({"status": status} if status else {})}
    return await _answer(run())


@router.get("/xrpc/fm.plyr.play.getPlayCounts")
async def get_play_counts(conn: Conn, uris: Annotated[list[str] | None, Query()] = None) -> Any:
    async def run() -> dict[str, Any]:
        wanted = uris or []
        if not wanted or len(wanted) > 100 or not all(syntax.is_at_uri(u) for u in wanted):
            raise XrpcError("InvalidRequest", "uris: 1 to 100 at:// URIs")
        counts = await plays.play_counts(conn, wanted)
        return {"counts": [{"uri": u, "plays": counts.get(u, 0)} for u in wanted]}
    return await _answer(run())
