"""Keyset cursors over (sort_at, id): stable while records arrive, never skipping or repeating.

The wire form is `<ISO-8601 sort_at>::<id>`. A bare ISO timestamp (what plyr.fm's own API hands
out) is accepted too, and then pages strictly before that instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from appview.errors import BadParam

_MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Cursor:
    at: datetime
    id: int

    def encode(self) -> str:
        return f"{self.at.isoformat()}::{self.id}"


def encode(at: datetime, id_: int) -> str:
    return Cursor(at, id_).encode()


def split(raw: str) -> tuple[datetime, str, str]:
    """`<ISO-8601>[::<tail>]` → (aware instant, separator, tail). A `+` that arrived URL-decoded as a
    space is put back."""
    stamp, sep, tail = raw.partition("::")
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadParam(f"malformed cursor {raw[:80]!r}: expected the next_cursor of a previous page") from None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)), sep, tail


def decode(raw: str | None) -> Cursor | None:
    if raw is None or raw == "":
        return None
    at, sep, tail = split(raw)
    if not sep:
        return Cursor(at, 0)  # bare timestamp: everything strictly older (id 0 sorts below every id)
    if not tail.isdigit() or int(tail) > _MAX_ID:
        raise BadParam(f"malformed cursor {raw[:80]!r}: bad id part")
    return Cursor(at, int(tail))
