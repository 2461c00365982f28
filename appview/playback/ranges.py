"""HTTP `Range` for one representation of known size (RFC 9110 §14).

We serve single byte ranges. Anything we don't serve (other units, several ranges, a malformed
header) is ignored, as the RFC allows, and the whole body is sent with 200; a well-formed range
that lies wholly beyond the end is 416.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"([0-9]{1,19})?-([0-9]{1,19})?")


@dataclass(frozen=True)
class Whole:
    pass


@dataclass(frozen=True)
class Partial:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class Unsatisfiable:
    pass


RangeResult = Whole | Partial | Unsatisfiable


def parse_range(header: str | None, size: int) -> RangeResult:
    if not header:
        return Whole()
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return Whole()
    specs = [s.strip(" \t") for s in spec.split(",")]
    specs = [s for s in specs if s]  # RFC list syntax tolerates empty elements
    if len(specs) != 1:
        return Whole()
    m = _SPEC.fullmatch(specs[0])
    if m is None or (m.group(1) is None and m.group(2) is None):
        return Whole()
    first, last = m.group(1), m.group(2)
    if first is None:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return Unsatisfiable()
        return Partial(max(size - n, 0), size - 1)
    start = int(first)
    end = int(last) if last is not None else size - 1
    if last is not None and end < start:
        return Whole()  # invalid range-spec: ignore the header
    if start >= size:
        return Unsatisfiable()
    return Partial(start, min(end, size - 1))


def if_range_allows(if_range: str | None, etag: str) -> bool:
    """`If-Range`: honour Range only if the validator is our (strong) ETag; dates never match."""
    return if_range is None or if_range.strip() == etag
