"""Parameter parsing for the search surfaces: every bad value becomes a `BadSearchParam` with a
message naming the parameter (rendered as 400), never a 422 list or a 500."""

from __future__ import annotations

from appview.query.albums import slugify as album_slug

Q_MIN, Q_MAX = 2, 100
TYPES = ("tracks", "artists", "albums", "tags", "playlists")


class BadSearchParam(ValueError):
    pass


def slugify(name: str) -> str:
    """The album slug the plyr-compatible album routes use (plyr.fm's, appview/query/albums.py)."""
    return album_slug(name)


def parse_q(raw: str | None) -> str:
    if raw is None:
        raise BadSearchParam("q: required")
    if "\x00" in raw:
        raise BadSearchParam("q: must not contain NUL characters")
    q = raw.strip()
    if not Q_MIN <= len(q) <= Q_MAX:
        raise BadSearchParam(f"q: must be {Q_MIN} to {Q_MAX} characters (got {len(q)})")
    return q


def parse_int(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise BadSearchParam(f"{name}: must be an integer from {lo} to {hi}") from None
    if not lo <= value <= hi:
        raise BadSearchParam(f"{name}: must be an integer from {lo} to {hi} (got {value})")
    return value


def parse_types(raw: str | None) -> tuple[str, ...]:
    """plyr.fm's `type=` comma list; absent or empty means every type. Unknown names are an error."""
    if raw is None:
        return TYPES
    names = [t.strip().lower() for t in raw.split(",") if t.strip()]
    unknown = sorted({t for t in names if t not in TYPES})
    if unknown:
        raise BadSearchParam(f"type: unknown {', '.join(repr(u) for u in unknown)}; expected a comma list of "
                             + ", ".join(TYPES))
    return tuple(t for t in TYPES if t in names) or TYPES
