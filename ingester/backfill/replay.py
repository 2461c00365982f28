"""Replay of the live commits held during a resync on top of the snapshot (indigo `FlushBufferedOps`).

Commits at or below the chain's rev are already covered by the snapshot. The next one must stack on it
(`since` = our rev, `prevData` = our data CID, via the chain rules of `ingester.verify.chain`); the first
one that does not is a gap: it and everything after it are still logged (they are verified and the rev
guard keeps projections convergent) but the repo stays desynchronized, so another resync follows.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.events import RecordEvent, SyncFrame
from ingester.pipeline.gate import Held
from ingester.pipeline.ingest import commit_events
from ingester.validate.records import RecordValidator
from ingester.verify.chain import ChainState, advance


def replay(state: ChainState, held: Sequence[Held], overflowed: bool, validator: RecordValidator
           ) -> tuple[list[RecordEvent], ChainState]:
    """(log rows of the held commits newer than `state`, the chain state after them)."""
    if overflowed:
        return [], ChainState(state.rev, state.data_cid, "desynchronized", "live buffer overflowed during resync")
    events: list[RecordEvent] = []
    gap: str | None = None
    for h in held:
        f = h.frame
        if f.rev <= state.rev:
            continue  # the snapshot already has it
        if isinstance(f, SyncFrame):
            if gap is None and f.data_cid is not None and f.data_cid == state.data_cid:
                state = ChainState(f.rev, f.data_cid, "synchronized")
            else:
                gap = gap or "#sync during resync: repo state reset upstream"
                state = ChainState(f.rev, f.data_cid, "desynchronized", gap)
            continue
        if gap is None:
            state = advance(state, f.rev, f.since, f.prev_data, f.data_cid)
            if state.sync_status != "synchronized":
                gap = f"gap after resync: {state.reason}"
                state = ChainState(state.rev, state.data_cid, "desynchronized", gap)
        else:
            state = ChainState(f.rev, f.data_cid, "desynchronized", gap)
        events.extend(commit_events(f, h.source, validator, verified=True))
    return events, state
