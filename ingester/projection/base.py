"""The interface every collection projector implements, and the put/delete change sets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from core.events import LoggedRecord


@dataclass(frozen=True, slots=True)
class Put:
    """The final state of one record after folding a batch: this event's record."""

    event: LoggedRecord
    item_id: int  # stable id: seq of the event that (re)created the record
    created_at: object  # received_at of the (re)creating event → indexed_at


class CollectionProjector(Protocol):
    collection: str

    async def apply(self, cur: psycopg.AsyncCursor, puts: list[Put], deleted_uris: list[str]) -> None:
        """Write `puts` (upsert) after removing the rows of `deleted_uris` (which may be re-put)."""
        ...

    async def purge_did(self, cur: psycopg.AsyncCursor, did: str) -> None:
        """Remove every row authored by `did` (account deletion)."""
        ...


class FlushHook(Protocol):
    """Runs around one flush: `before` sees the projections as they were, `after` as they are now."""

    async def before(self, cur: psycopg.AsyncCursor, changes: dict[str, tuple[list[Put], list[str]]]) -> Any:
        ...

    async def after(
        self, cur: psycopg.AsyncCursor, changes: dict[str, tuple[list[Put], list[str]]], token: Any
    ) -> None:
        ...
