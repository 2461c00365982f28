"""Query parameters of the `fm.plyr.sync.*` methods, parsed by hand so that every bad value is a
400 `InvalidRequest` with a message (FastAPI's own validation would answer 422).

Filters follow Jetstream v2 (`../shared/reference/sync.md` §2.3): `collections` (exact NSIDs or
prefix wildcards `ns.*`) constrain only commits; repo events (identity, account, sync, …) are
gated by `dids` and `kinds` alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from starlette.datastructures import QueryParams

from core import syntax

MAX_COLLECTIONS = 100
MAX_DIDS = 10_000
MAX_CURSOR = 2**63 - 1
COMMIT = "commit"
REPO_KINDS = frozenset({"identity", "account", "sync", "desync", "resync", "forged"})
KINDS = REPO_KINDS | {COMMIT}


class XrpcError(Exception):
    """An XRPC error envelope `{"error": name, "message": message}` with its HTTP status."""

    def __init__(self, error: str, message: str, status: int = 400, **extra: object) -> None:
        super().__init__(message)
        self.error, self.message, self.status, self.extra = error, message, status, extra

    def body(self) -> dict[str, object]:
        return {"error": self.error, "message": self.message, **self.extra}


def bad(message: str) -> XrpcError:
    return XrpcError("InvalidRequest", message)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which log events a consumer wants. Empty `collections`/`prefixes`/`dids` = no constraint."""

    collections: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()  # each ends with "." ("fm.plyr.*" -> "fm.plyr.")
    dids: frozenset[str] = frozenset()
    kinds: frozenset[str] = KINDS
    include_rejected: bool = False

    @property
    def wants_commits(self) -> bool:
        return COMMIT in self.kinds

    @property
    def repo_kinds(self) -> frozenset[str]:
        return self.kinds & REPO_KINDS

    @property
    def any_collection(self) -> bool:
        return not self.collections and not self.prefixes

    def collection_matches(self, collection: str) -> bool:
        return self.any_collection or collection in self.collections or collection.startswith(self.prefixes)

    def matches_commit(self, did: str, collection: str, rejected: bool) -> bool:
        return (self.wants_commits and (not rejected or self.include_rejected)
                and (not self.dids or did in self.dids) and self.collection_matches(collection))

    def matches_repo(self, did: str, kind: str) -> bool:
        return kind in self.kinds and (not self.dids or did in self.dids)


def parse_collection(value: str) -> tuple[str, bool]:
    """(nsid or prefix, is_prefix); `fm.plyr.*` -> ("fm.plyr.", True)."""
    if value.endswith(".*"):
        stem = value[:-2]
        # A prefix is one or more whole NSID segments: check it as an NSID with dummy segments.
        if stem and syntax.is_nsid(stem + ".a.b") and len(stem) <= 253:
            return stem + ".", True
        raise bad(f"collections: {value[:80]!r} is not an NSID prefix wildcard like 'fm.plyr.*'")
    if syntax.is_nsid(value):
        return value, False
    raise bad(f"collections: {value[:80]!r} is not an NSID or a prefix wildcard ending in '.*'")


def parse_filter(params: QueryParams) -> EventFilter:
    raw_collections = _unique(params.getlist("collections"))
    if len(raw_collections) > MAX_COLLECTIONS:
        raise bad(f"collections: at most {MAX_COLLECTIONS} values")
    exact: set[str] = set()
    prefixes: set[str] = set()
    for value in raw_collections:
        nsid, is_prefix = parse_collection(value)
        (prefixes if is_prefix else exact).add(nsid)
    dids = _unique(params.getlist("dids"))
    if len(dids) > MAX_DIDS:
        raise bad(f"dids: at most {MAX_DIDS} values")
    for did in dids:
        if not syntax.is_did(did):
            raise bad(f"dids: {did[:80]!r} is not a DID")
    kinds = frozenset(_unique(params.getlist("kinds"))) or KINDS
    if unknown := kinds - KINDS:
        raise bad(f"kinds: unknown {sorted(unknown)[0][:40]!r}; expected some of {sorted(KINDS)}")
    if raw_collections and COMMIT not in kinds:
        raise bad("collections only constrain commits, but kinds excludes 'commit'")
    return EventFilter(frozenset(exact), tuple(sorted(prefixes)), frozenset(dids), kinds,
                       parse_bool(params, "includeRejected", False))


def parse_cursor(params: QueryParams, name: str = "cursor") -> int | None:
    value = _single(params, name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19 or int(value) > MAX_CURSOR:
        raise bad(f"{name}: must be a non-negative integer (a log seq), got {value[:40]!r}")
    return int(value)


def parse_limit(params: QueryParams, default: int, maximum: int) -> int:
    value = _single(params, "limit")
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 6 or not 1 <= int(value) <= maximum:
        raise bad(f"limit: must be an integer from 1 to {maximum}, got {value[:40]!r}")
    return int(value)


def parse_bool(params: QueryParams, name: str, default: bool) -> bool:
    value = _single(params, name)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise bad(f"{name}: must be 'true' or 'false', got {value[:40]!r}")
    return value == "true"


def parse_record_uri(params: QueryParams) -> syntax.AtUri:
    value = _single(params, "uri")
    if value is None:
        raise bad("uri: required")
    try:
        uri = syntax.parse_at_uri(value)
    except ValueError as e:
        raise bad(f"uri: {e}") from None
    if uri.collection is None or uri.rkey is None:
        raise bad("uri: must name a record (at://<did|handle>/<collection>/<rkey>)")
    return uri


def parse_tid(params: QueryParams, name: str) -> str | None:
    value = _single(params, name)
    if value is not None and not syntax.is_tid(value):
        raise bad(f"{name}: must be a TID (a commit rev), got {value[:40]!r}")
    return value


def parse_datetime(params: QueryParams, name: str) -> datetime | None:
    value = _single(params, name)
    if value is None:
        return None
    if not syntax.is_datetime(value):
        raise bad(f"{name}: must be an RFC 3339 datetime with a time zone, got {value[:40]!r}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad(f"{name}: {value[:40]!r} is not a datetime Python can represent") from None


def reject_unknown(params: QueryParams, allowed: Iterable[str]) -> None:
    """Unknown names are errors, so that Jetstream v1 names (`wantedCollections`) never silently
    widen a filter."""
    allowed = set(allowed)
    for key in params:
        if key not in allowed:
            raise bad(f"unknown parameter {key[:40]!r}; expected some of {sorted(allowed)}")


def _single(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise bad(f"{name}: given more than once")
    return values[0] if values else None


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))
