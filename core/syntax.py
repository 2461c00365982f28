"""atproto string formats (https://atproto.com/specs/...): pure, I/O-free, fast validators.

Every ``is_*`` returns a bool and never raises (non-``str`` input is simply invalid); ``parse_*``
raise ``ValueError`` with a human-readable reason. Rules follow the specs and are checked against
``bluesky-social/atproto-interop-tests`` (``syntax/*.txt``, copied to ``tests/core/vectors/``).
Where the TypeScript and Go reference implementations differ, the interop vectors decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "AtUri",
    "is_at_identifier",
    "is_at_uri",
    "is_cid",
    "is_datetime",
    "is_did",
    "is_handle",
    "is_language",
    "is_nsid",
    "is_record_key",
    "is_tid",
    "is_uri",
    "parse_at_uri",
]

# All patterns are used with fullmatch() (``$`` would accept a trailing newline) and spell out
# ASCII classes (``\d``/``\w`` are Unicode-aware in Python).
_DID = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_HANDLE = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
)
_NSID = re.compile(
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+"
    r"\.[a-zA-Z][a-zA-Z0-9]{0,62}"
)
_TID = re.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
_RKEY = re.compile(r"[a-zA-Z0-9_~.:-]{1,512}")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))"
)
# RFC 3986 scheme, then (like the TS reference) an optional "//" and a first char that is not "/";
# no whitespace or control characters anywhere.
_URI = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:(?://)?[^\s/\x00-\x1f\x7f][^\s\x00-\x1f\x7f]*")
_CID = re.compile(r"[a-zA-Z0-9+=]{8,256}")
_CID_B32 = re.compile(r"b[a-z2-7]+")
# BCP-47 (RFC 5646 §2.1) as in @atproto/syntax: primary language subtag must be lowercase.
_LANGUAGE = re.compile(
    r"(?P<grandfathered>en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo"
    r"|i-navajo|i-pwn|i-tao|i-tay|i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE|art-lojban|cel-gaulish"
    r"|no-bok|no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang)"
    r"|(?:[a-z]{2,3}(?:-[A-Za-z]{3}(?:-[A-Za-z]{3}){0,2})?)(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*"
    r"(?:-[xX](?:-[A-Za-z0-9]{1,8})+)?"
    r"|(?P<private>[xX](?:-[A-Za-z0-9]{1,8})+)"
)
_LANG_EXTLANG = re.compile(r"[A-Za-z]{3}")
_LANG_SCRIPT = re.compile(r"[A-Za-z]{4}")
_LANG_REGION = re.compile(r"[A-Za-z]{2}|[0-9]{3}")
_LANG_VARIANT = re.compile(r"[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}")
_LANG_SINGLETON = re.compile(r"[0-9A-WYZa-wyz]")
_LANG_EXT_SUBTAG = re.compile(r"[A-Za-z0-9]{2,8}")

_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_did(s: str) -> bool:
    """``did:<method>:<id>`` per https://atproto.com/specs/did (syntax only, any method, <= 2 KB)."""
    return isinstance(s, str) and len(s) <= 2048 and _DID.fullmatch(s) is not None


def is_handle(s: str) -> bool:
    """DNS hostname per https://atproto.com/specs/handle: >= 2 labels, TLD not starting with a digit."""
    return isinstance(s, str) and len(s) <= 253 and _HANDLE.fullmatch(s) is not None


def is_at_identifier(s: str) -> bool:
    """A DID or a handle."""
    return is_did(s) or is_handle(s)


def is_nsid(s: str) -> bool:
    """Reversed-domain authority + camelCase name, >= 3 segments, <= 317 chars."""
    return isinstance(s, str) and len(s) <= 317 and _NSID.fullmatch(s) is not None


def is_tid(s: str) -> bool:
    """13 chars of base32-sortable, top bit of the first char clear."""
    return isinstance(s, str) and _TID.fullmatch(s) is not None


_B32_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"


def tid_from_micros(micros: int, clock_id: int = 0) -> str:
    """A TID: 53-bit microsecond timestamp and 10-bit clock id, base32-sortable, 13 chars (what plyr.fm derives
    from a record's createdAt, so its putRecord writes are idempotent)."""
    v = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    return "".join(_B32_SORTABLE[(v >> (5 * i)) & 31] for i in reversed(range(13)))


def is_record_key(s: str) -> bool:
    """1-512 chars of ``A-Za-z0-9._~:-``, except ``.`` and ``..``."""
    return isinstance(s, str) and _RKEY.fullmatch(s) is not None and s != "." and s != ".."


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def is_datetime(s: str) -> bool:
    """atproto ``datetime``: RFC 3339 ∩ ISO 8601, e.g. ``1985-04-12T23:20:50.123Z``.

    Uppercase ``T``/``Z``; whole seconds required, any number of fraction digits; timezone required
    (``Z`` or ``±hh:mm``, never ``-00:00``); <= 64 chars; must be a real calendar date/time (no
    month 13, Feb 30, second 60) that normalises to a UTC year in 0000..9999.
    """
    if not isinstance(s, str) or len(s) > 64:
        return False
    m = _DATETIME.fullmatch(s)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if not 1 <= month <= 12 or day < 1 or hour > 23 or minute > 59 or second > 59:
        return False
    if day > _DAYS_IN_MONTH[month] and not (month == 2 and day == 29 and _is_leap(year)):
        return False
    sign = m.group(7)
    if sign is None:
        return True
    off = int(m.group(8)) * 60 + int(m.group(9))
    if int(m.group(8)) > 23 or int(m.group(9)) > 59 or (sign == "-" and off == 0):
        return False
    local = hour * 60 + minute
    if year == 0 and month == 1 and day == 1 and sign == "+" and local < off:
        return False  # normalises to a negative year
    if year == 9999 and month == 12 and day == 31 and sign == "-" and local + off >= 1440:
        return False  # normalises to year 10000
    return True


def parse_datetime(s: str) -> datetime:
    """An atproto ``datetime`` (already validated) as an aware UTC datetime; extra fraction digits are cut
    to microseconds. Raises ValueError for anything ``is_datetime`` rejects."""
    if not is_datetime(s):
        raise ValueError(f"not an atproto datetime: {s!r}")
    head, _, frac_tz = s.partition(".")
    if frac_tz:
        digits = len(frac_tz) - len(frac_tz.lstrip("0123456789"))
        s = f"{head}.{frac_tz[:min(digits, 6)]}{frac_tz[digits:]}"
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def is_uri(s: str) -> bool:
    """Generic URI: RFC 3986 scheme, ``:``, non-empty rest without whitespace; <= 8 KB."""
    return isinstance(s, str) and len(s) <= 8192 and _URI.fullmatch(s) is not None


def is_cid(s: object) -> bool:
    """Sanity check of a CID in string form (not a full multiformats parse).

    8-256 chars of a multibase alphabet; base32 (``b...``) must be lowercase base32. CIDv0
    (``Qm...``) is rejected, as in the interop vectors ("old CIDv0 not supported").
    """
    if not isinstance(s, str) or _CID.fullmatch(s) is None or s.startswith("Qm"):
        return False
    return s[0] != "b" or _CID_B32.fullmatch(s) is not None


def is_language(s: str) -> bool:
    """Well-formed BCP-47 language tag (no duplicate variant or extension singleton), <= 128 chars."""
    if not isinstance(s, str) or len(s) > 128:
        return False
    m = _LANGUAGE.fullmatch(s)
    if m is None:
        return False
    if m.group("grandfathered") or m.group("private"):
        return True
    return not _lang_has_duplicates(s.split("-"))


def _lang_has_duplicates(subtags: list[str]) -> bool:
    i, n = 1, len(subtags)
    while i < n and i <= 3 and _LANG_EXTLANG.fullmatch(subtags[i]):
        i += 1
    if i < n and _LANG_SCRIPT.fullmatch(subtags[i]):
        i += 1
    if i < n and _LANG_REGION.fullmatch(subtags[i]):
        i += 1
    seen: set[str] = set()
    while i < n and _LANG_VARIANT.fullmatch(subtags[i]):
        key = subtags[i].lower()
        if key in seen:
            return True
        seen.add(key)
        i += 1
    singletons: set[str] = set()
    while i < n and _LANG_SINGLETON.fullmatch(subtags[i]):
        key = subtags[i].lower()
        if key in singletons:
            return True
        singletons.add(key)
        i += 1
        while i < n and _LANG_EXT_SUBTAG.fullmatch(subtags[i]):
            i += 1
    return False


@dataclass(frozen=True, slots=True)
class AtUri:
    """A parsed ``at://`` URI in the restricted Lexicon ``at-uri`` form."""

    did_or_handle: str
    collection: str | None = None
    rkey: str | None = None

    def __str__(self) -> str:
        parts = [self.did_or_handle, self.collection, self.rkey]
        return "at://" + "/".join(p for p in parts if p is not None)


def parse_at_uri(uri: str) -> AtUri:
    """Parse ``at://<did|handle>[/<nsid>[/<rkey>]]``; raises ``ValueError`` saying why not.

    This is the restricted syntax used by the Lexicon ``at-uri`` format: ASCII, <= 8 KB, no query,
    no fragment, no trailing slash, no percent-encoding in collection or record key.
    """
    if not isinstance(uri, str):
        raise ValueError(f"AT-URI must be a string, not {type(uri).__name__}")
    if len(uri) > 8192:
        raise ValueError("AT-URI is longer than 8192 chars")
    if not uri.startswith("at://"):
        raise ValueError("AT-URI must start with 'at://'")
    if "?" in uri or "#" in uri:
        raise ValueError("AT-URI query and fragment parts are not allowed")
    parts = uri[5:].split("/")
    if len(parts) > 3:
        raise ValueError("AT-URI has more than two path segments (or a trailing slash)")
    if not is_at_identifier(parts[0]):
        raise ValueError(f"AT-URI authority is neither a DID nor a handle: {parts[0][:64]!r}")
    collection = parts[1] if len(parts) > 1 else None
    if collection is not None and not is_nsid(collection):
        raise ValueError(f"AT-URI collection is not a valid NSID: {collection[:64]!r}")
    rkey = parts[2] if len(parts) > 2 else None
    if rkey is not None and not is_record_key(rkey):
        raise ValueError(f"AT-URI record key is not valid: {rkey[:64]!r}")
    return AtUri(parts[0], collection, rkey)


def is_at_uri(s: str) -> bool:
    """True when ``parse_at_uri(s)`` would succeed."""
    try:
        parse_at_uri(s)
    except ValueError:
        return False
    return True
