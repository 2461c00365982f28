"""The interface every collection projector implements, and the put/delete change sets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import psycopg

from core.events import LoggedRecord
from core.syntax import parse_datetime


@dataclass(frozen=True, slots=True)
class Put:
    """The final state of one record after folding a batch: this event's record."""

    event: LoggedRecord
    item_id: int  # stable id: seq of the event that (re)created the record
    created_at: object  # received_at of the (re)creating event → indexed_at
    # No state was ever recorded for this record (no `record_state` row when the batch began), so no
    # projection row can exist for it: its row is COPYed straight into the table (`writes.upsert_rows`).
    fresh: bool = False


class CollectionProjector(Protocol):
    collection: str

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        """Write `puts` (upsert) after removing the rows of `deleted_uris` (which may be re-put)."""
        ...

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        """Remove every row authored by `did` (account deletion)."""
        ...


def sort_at(created_at: object, indexed_at: object) -> object:
    """Bluesky's sortAt: the earlier of the record's claimed `createdAt` and when we first saw it, so a
    backfilled old record sorts by its own date and a future-dated one cannot pin itself to the top."""
    if not isinstance(created_at, str) or not isinstance(indexed_at, datetime):
        return indexed_at
    try:
        claimed = parse_datetime(created_at)
    except ValueError:  # year 0000 is valid atproto but not a Python datetime
        return indexed_at
    return min(claimed, indexed_at)

class FlushHook(Protocol):
    """Runs around one flush: `before` sees the projections as they were, `after` as they are now."""

    async def before(self, cur: psycopg.AsyncCursor, changes: dict[str, tuple[list[Put], list[str]]]) -> Any:
        ...

    async def after(
        self, cur: psycopg.AsyncCursor, changes: dict[str, tuple[list[Put], list[str]]], token: Any
    ) -> None:
        ...


@runtime_checkable
class Derived(Protocol):
    """A flush hook whose table is a pure function of the other projections: recomputing it once from them
    equals running `before`/`after` around every flush since the start. A rebuild skips it per flush and
    calls `recompute` once after the bulk load (a hook without it simply runs per flush)."""

    async def recompute(self, cur: psycopg.AsyncCursor) -> None:
        ...
