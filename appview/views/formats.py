"""Small value conversions shared by the views: dates in plyr.fm's two serialisations, slugs,
thumbnails, record URLs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from appview.query.albums import slugify as album_slug
from core.syntax import parse_datetime

_PLYR_IMAGE = re.compile(r"(https://images\.plyr\.fm/images/[0-9A-Za-z_-]+)\.[A-Za-z0-9]+")


def iso(value: str | datetime) -> str:
    """Python `isoformat()` (`…+00:00`), as plyr.fm fills its `str` date fields."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    try:
        return parse_datetime(value).isoformat()
    except ValueError:
        return value


def iso_z(value: str | datetime) -> str:
    """pydantic's datetime form (`…Z`), as plyr.fm serialises its `datetime` fields."""
    out = iso(value)
    return out[:-6] + "Z" if out.endswith("+00:00") else out


def slugify(name: str) -> str:
    """plyr.fm's album slug (appview/query/albums.py holds the one definition, in Python and SQL)."""
    return album_slug(name)


def thumbnail(image_url: str | None) -> str | None:
    """plyr.fm's CDN keeps a 96×96 WebP beside every image; other hosts have no known thumbnail."""
    if not image_url:
        return None
    m = _PLYR_IMAGE.fullmatch(image_url)
    return f"{m.group(1)}_thumb.webp" if m else None


def record_url(pds: str | None, did: str, collection: str, rkey: str) -> str | None:
    if not pds:
        return None
    return f"{pds.rstrip('/')}/xrpc/com.atproto.repo.getRecord?repo={did}&collection={collection}&rkey={rkey}"
