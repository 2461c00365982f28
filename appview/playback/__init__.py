"""Playback: `GET|HEAD /audio/{file_id}`, the file_id scheme, and per-track playability."""

from __future__ import annotations

from functools import lru_cache

import psycopg

from appview.playback.ids import file_id, parse_file_id
from appview.playback.routes import Playback, playback_router
from core.blobstore.playability import PLAYABILITY_JOINS, PLAYABILITY_SQL, Playability, host_patterns
from core.blobstore.settings import BlobSettings

_PLAYABILITY = f"SELECT t.uri, {PLAYABILITY_SQL} FROM track t {PLAYABILITY_JOINS} WHERE t.uri = ANY(%(uris)s)"


@lru_cache(maxsize=1)
def default_audio_hosts() -> tuple[str, ...]:
    return BlobSettings().allowed_audio_hosts


async def playability_for(conn: psycopg.AsyncConnection, uris: list[str],
                          hosts: tuple[str, ...] | None = None) -> dict[str, str]:
    """Playability (mirrored | pds_only | url_only | dead) of each known track URI, in one query."""
    if not uris:
        return {}
    params = {"uris": list(uris), "audio_hosts": host_patterns(hosts if hosts is not None else default_audio_hosts())}
    async with conn.cursor() as cur:
        await cur.execute(_PLAYABILITY, params)
        return {uri: state for uri, state in await cur.fetchall()}


__all__ = ["Playability", "Playback", "default_audio_hosts", "file_id", "parse_file_id", "playability_for",
           "playback_router"]
