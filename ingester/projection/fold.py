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


@dataclass(slots=True)
class _Pending:
    put: Put | None  # None = deleted
    recreated: bool  # a delete happened in this batch before the final put


class BatchFold:
    def __init__(self, initial: dict[Key, KeyState]) -> None:
        self.states = initial
        self.live_at_start = {k for k, s in initial.items() if not s.deleted}
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
        self.changes[key] = _Pending(Put(ev, item_id, created_at), recreated or (fresh and st is not None))

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

    def state_rows(self) -> list[tuple[Any, ...]]:
        rows = []
        for key in self.changes:
            s = self.states[key]
            rows.append((*key, s.rev, s.cid, s.deleted, s.item_id, s.seq))
        return rows
