"""`GET|HEAD /audio/{file_id}`: the route and the store it reads."""

from __future__ import annotations

import asyncio

import orjson
import psycopg
from fastapi import APIRouter, Request
from prometheus_client import Counter
from starlette.responses import RedirectResponse, Response

from appview.deps import Conn
from appview.playback.ids import parse_file_id
from appview.playback.resolve import NOT_FOUND, FromMirror, RedirectTo, Refuse, candidates, decide
from appview.playback.response import BlobFileResponse, HeadOf
from core.blobstore import BlobSettings, BlobStore, LocalFile, open_store, safe_audio_mime

AUDIO = Counter("audio_responses_total", "/audio answers by source", ["source", "status"])


class Playback:
    """Holds the blob store (opened on first use) for the /audio route."""

    def __init__(self, settings: BlobSettings, store: BlobStore | None = None) -> None:
        self.settings = settings
        self.hosts = settings.allowed_audio_hosts
        self._store = store
        self._lock = asyncio.Lock()

    async def store(self) -> BlobStore:
        if self._store is None:
            async with self._lock:
                if self._store is None:
                    self._store = await open_store(self.settings)
        return self._store

    async def aclose(self) -> None:
        if self._store is not None:
            await self._store.aclose()
            self._store = None

    def router(self) -> APIRouter:
        return playback_router(self)


def _refusal(r: Refuse) -> Response:
    headers = {"cache-control": "no-store"}
    if r.status == 402:
        headers["x-support-required"] = "true"
    body = orjson.dumps({"error": r.error, "message": r.message})
    return Response(body, status_code=r.status, media_type="application/json", headers=headers)


def _redirect(url: str) -> Response:
    # Presigned URLs expire and sources change (mirror arrives, PDS moves): never cache the hop.
    return RedirectResponse(url, status_code=307, headers={"cache-control": "no-store"})


def playback_router(playback: Playback) -> APIRouter:
    router = APIRouter(tags=["playback"])

    async def audio(file_id: str, request: Request, conn: Conn) -> Response:
        head = request.method == "HEAD"
        response, source = await _answer(playback, conn, file_id, request)
        AUDIO.labels(source, str(response.status_code)).inc()
        return HeadOf(response) if head and not isinstance(response, BlobFileResponse) else response

    # One handler, two operations (distinct ids keep the OpenAPI document valid).
    router.add_api_route("/audio/{file_id}", audio, methods=["GET"], response_model=None, operation_id="get_audio")
    router.add_api_route("/audio/{file_id}", audio, methods=["HEAD"], response_model=None, operation_id="head_audio")

    return router


async def _answer(playback: Playback, conn: psycopg.AsyncConnection, file_id: str,
                  request: Request) -> tuple[Response, str]:
    ref = parse_file_id(file_id)
    if ref is None:
        return _refusal(NOT_FOUND), "none"
    cands = await candidates(conn, ref)
    await conn.commit()  # don't hold a transaction open while streaming
    store = await playback.store()
    decision = decide(cands, store.kind, playback.hosts)
    if isinstance(decision, FromMirror):
        location = await store.locate(decision.cid, decision.mime)
        if isinstance(location, LocalFile):
            return BlobFileResponse(location.path, location.size, decision.cid, safe_audio_mime(decision.mime),
                                    request.headers.get("range"), request.headers.get("if-range"),
                                    head=request.method == "HEAD"), f"mirror_{store.kind}"
        if location is not None:
            return _redirect(location.url), f"mirror_{store.kind}"
        # The table says mirrored but the copy is missing: fall back; the checker will notice.
        decision = decide(cands, store.kind, playback.hosts, skip_mirror=True)
    if isinstance(decision, RedirectTo):
        return _redirect(decision.url), decision.source
    assert isinstance(decision, Refuse)
    return _refusal(decision), decision.error
