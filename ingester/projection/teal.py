"""Reading teal.fm records: both collection generations and both field-name generations.

`fm.teal.alpha.*` (before teal's 2026-07 namespace change) and `fm.teal.*`; play fields `originUrl` /
`musicServiceBaseDomain` (older) and `originUri` / `musicServiceUri` (teal PR #110, plyr #1823).
Pure functions over validated records; the projectors in `plays.py` build rows from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from core import syntax

PLAY_COLLECTIONS: Final = ("fm.teal.feed.play", "fm.teal.alpha.feed.play")
STATUS_COLLECTIONS: Final = ("fm.teal.actor.status", "fm.teal.alpha.actor.status")
PLYR_TRACK: Final = "fm.plyr.track"
# Hosts whose plays happened on plyr.fm (what plyr writes as musicServiceUri / BaseDomain / origin).
PLYR_HOSTS: Final = frozenset({"plyr.fm", "www.plyr.fm", "stg.plyr.fm"})


def artist_names(item: dict[str, Any]) -> list[str]:
    """`artists[].artistName`, else the deprecated `artistNames[]`, in order."""
    artists = item.get("artists")
    if isinstance(artists, list) and artists:
        names = [a["artistName"] for a in artists if isinstance(a, dict) and isinstance(a.get("artistName"), str)]
        if names:
            return names
    legacy = item.get("artistNames")
    return [n for n in legacy if isinstance(n, str)] if isinstance(legacy, list) else []


def origin(item: dict[str, Any]) -> str | None:
    value = item.get("originUri", item.get("originUrl"))
    return value if isinstance(value, str) else None


def music_service(item: dict[str, Any]) -> str | None:
    value = item.get("musicServiceUri", item.get("musicServiceBaseDomain"))
    return value if isinstance(value, str) else None


def _host(value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value if "://" in value else f"https://{value}")
    return (parts.hostname or "").lower() or None


def plyr_origin(item: dict[str, Any]) -> bool:
    return _host(music_service(item)) in PLYR_HOSTS or _host(origin(item)) in PLYR_HOSTS


def subject_track(item: dict[str, Any]) -> str | None:
    """An `at://<did>/fm.plyr.track/<rkey>` the play names as its origin: an exact, stable link."""
    value = origin(item)
    if value is None or not value.startswith("at://did:") or not syntax.is_at_uri(value):
        return None
    parts = value[5:].split("/")
    if len(parts) != 3 or parts[1] != PLYR_TRACK or not parts[2]:
        return None
    return value


def parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not syntax.is_datetime(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
