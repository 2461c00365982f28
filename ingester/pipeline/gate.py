"""The hand-over between the live pipeline and resync (sync.md §3.2, indigo `FlushBufferedOps`).

While a repo is being resynced its live commits are verified as usual and *held* here: the resync applies
its snapshot, then replays the held commits that stack on the snapshot's rev (a gap means another resync).
Every batch of the live pipeline runs under `lock`, and so do the start and the end of a resync, so a repo
switches between "live" and "held" only between batches, never in the middle of one.

Two modes. `buffer_live=True` is indigo's: held commits reach the log only at the replay. The default appends
them at once as well and holds them only for the chain check: the per-record rev guard makes the log
converge whatever the order of snapshot diff and live events (tests/property/test_backfill_diff.py proves a
log ahead of the snapshot is never rolled back), and a new repo's first writes are not delayed by a getRepo.

Held commits live in memory only. A crash loses them without losing data: the repo's job is still pending
in the database, and the snapshot the restarted resync fetches contains them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from core.events import Commit, SyncFrame

log = structlog.get_logger(__name__)

MAX_HELD = 10_000  # per repo; past this the buffer is dropped and the resync treated as gapped


@dataclass(frozen=True, slots=True)
class Held:
    source: str  # the live source that delivered it (its name goes into the log row)
    frame: Commit | SyncFrame


@dataclass
class _Buffer:
    items: list[Held] = field(default_factory=list)
    overflowed: bool = False


Enroll = Callable[[str, str], None]


class ResyncGate:
    def __init__(self, *, buffer_live: bool = False) -> None:
        self.buffer_live = buffer_live
        self.lock = asyncio.Lock()
        self._buffers: dict[str, _Buffer] = {}
        self._enroll: list[Enroll] = []

    # --- live side ----------------------------------------------------------------------------------

    def resyncing(self, did: str) -> bool:
        return did in self._buffers

    def hold(self, did: str, source: str, frame: Commit | SyncFrame) -> bool:
        """Hold `frame` if `did` is being resynced; True when held (the caller must not append it)."""
        buf = self._buffers.get(did)
        if buf is None:
            return False
        if len(buf.items) >= MAX_HELD:
            if not buf.overflowed:
                log.warning("resync.buffer_overflow", did=did, held=len(buf.items))
            buf.overflowed = True
            buf.items.clear()
        if not buf.overflowed:
            buf.items.append(Held(source, frame))
        return True

    def enroll(self, did: str, reason: str) -> None:
        """A repo needs a resync (desynchronized chain, `#sync`, first seen mid-chain)."""
        for listener in self._enroll:
            listener(did, reason)

    # --- resync side (call with `lock` held) --------------------------------------------------------

    def on_enroll(self, listener: Enroll) -> None:
        self._enroll.append(listener)

    def begin(self, did: str) -> None:
        self._buffers.setdefault(did, _Buffer())

    def end(self, did: str) -> tuple[list[Held], bool]:
        """Stop holding `did`; returns (held frames in arrival order, whether some were dropped)."""
        buf = self._buffers.pop(did, None)
        if buf is None:
            return [], False
        return buf.items, buf.overflowed
