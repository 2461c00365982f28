"""Fold a batch of record events in memory under the per-record rev guard.

The result must equal applying the events one at a time, whatever the batch boundaries, so
that a rebuild (large batches) gives byte-identical projections to live ingest (small ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.events import LoggedRecord
from ingester.projection.base import Put

Key = tuple[str, str, str]  # (did, collection, rkey)


@dataclass(slots=True)
class KeyState:
    rev: str
    cid: str | None
    deleted: bool
    item_id: int | None
    seq: int


@dataclass(frozen=True, slots=True)
class SingleEventKeys:
    """A rebuild's shortcut: through log position `through`, every record outside `repeated` has one event in
    the whole log, so when that event is folded the record has no state yet: nothing to look up."""

    through: int
    repeated: frozenset[Key]

    def to_look_up(self, events: list[LoggedRecord]) -> set[Key]:
        return {k for e in events if (k := (e.did, e.collection, e.rkey)) in self.repeated or e.seq > self.through}


@dataclass(slots=True)
class _Pending:
    put: Put | None  # None = deleted
    recreated: bool  # a delete happened in this batch before the final put


class BatchFold:
    def __init__(self, initial: dict[Key, KeyState], *, trust_fresh: bool = True) -> None:
        # `trust_fresh`: mark puts of keys without any state as `Put.fresh` (the projector turns it off to
        # redo a step whose fresh row met an existing one).
        self.trust_fresh = trust_fresh
        self.states = initial
        self.live_at_start = {k for k, s in initial.items() if not s.deleted}
        self.seen_at_start = set(initial)
        self.changes: dict[Key, _Pending] = {}
        self._created_at: dict[Key, Any] = {}
        self.skipped_stale = 0

    def apply(self, ev: LoggedRecord) -> None:
        key = (ev.did, ev.collection, ev.rkey)
        st = self.states.get(key)
        # Rev is the per-repo logical clock (TID, base32-sortable: plain str order == "C" order).
        if st is not None and ev.rev <= st.rev:
            self.skipped_stale += 1
            return
        prior = self.changes.get(key)
        recreated = prior is not None and (prior.put is None or prior.recreated)
        if ev.action == "delete":
            self.states[key] = KeyState(ev.rev, None, True, None, ev.seq)
            self.changes[key] = _Pending(None, recreated)
            return
        fresh = st is None or st.deleted
        item_id = ev.seq if fresh or st is None or st.item_id is None else st.item_id
        if fresh:
            self._created_at[key] = ev.received_at
        created_at = self._created_at.get(key, ev.received_at)
        self.states[key] = KeyState(ev.rev, ev.cid, False, item_id, ev.seq)
        never = self.trust_fresh and key not in self.seen_at_start
        self.changes[key] = _Pending(Put(ev, item_id, created_at, never), recreated or (fresh and st is not None))

    def by_collection(self) -> dict[str, tuple[list[Put], list[str]]]:
        """{collection: (puts, uris whose current rows must go before the puts are written)}."""
        out: dict[str, tuple[list[Put], list[str]]] = {}
        for key, change in self.changes.items():
            puts, deleted = out.setdefault(key[1], ([], []))
            if key in self.live_at_start and (change.put is None or change.recreated):
                deleted.append(f"at://{key[0]}/{key[1]}/{key[2]}")
            if change.put is not None:
                puts.append(change.put)
        return out

    def state_rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """(rows of keys that had a state, rows of keys that had none: `fresh`, see `Put.fresh`)."""
        rows: list[tuple[Any, ...]] = []
        fresh: list[tuple[Any, ...]] = []
        for key in self.changes:
            s = self.states[key]
            out = fresh if self.trust_fresh and key not in self.seen_at_start else rows
            out.append((*key, s.rev, s.cid, s.deleted, s.item_id, s.seq))
        return rows, fresh
