"""Per-repo queues of frames waiting for their DID's identity (indigo's parallel scheduler, in batches).

A frame whose DID needs a resolution that is not at hand is parked here, and so is every later frame of that
DID, so a repo's frames keep their order while the other repos go on. When the DID's resolution is done its
queue is handed back whole (`take_ready`) and processed, in order, at the start of a later batch.

Two guarantees make this convergent. The source cursor committed with a batch never passes the lowest
parked seq (`low_seq`), so a crash replays every parked frame (the log's dedup key and the chain's rev
check absorb what was already applied). And memory is bounded: past `max_repo_bytes` for one repo, or
`max_bytes` in all, the oldest parked work is dropped and the repo enrolled for a resync, whose signed
snapshot contains everything dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from core.events import Frame


@dataclass(slots=True)
class Item:
    """One frame on its way through the batch loop."""

    frame: Frame
    size: int  # bytes on the wire: the measure of the parking bounds
    arrived: float  # monotonic time of the batch it arrived in (a forced refresh must be newer)
    raw: bytes | None = None  # fresh frames only: a `Skipped` frame may need decoding again

    @property
    def seq(self) -> int | None:
        seq = getattr(self.frame, "seq", None)
        return seq if isinstance(seq, int) else None


@dataclass(slots=True)
class _Queue:
    waiting_for: asyncio.Task[Any]
    items: deque[Item] = field(default_factory=deque)
    size: int = 0


Checkpoint = dict[str, tuple["asyncio.Task[Any]", tuple[Item, ...], int]]


class ParkingLot:
    def __init__(self, *, max_repo_bytes: int = 1 << 20, max_bytes: int = 64 << 20) -> None:
        self.max_repo_bytes, self.max_bytes = max_repo_bytes, max_bytes
        self._queues: dict[str, _Queue] = {}
        self.size = 0

    def __contains__(self, did: object) -> bool:
        return did in self._queues

    def __len__(self) -> int:
        return sum(len(q.items) for q in self._queues.values())

    @property
    def dids(self) -> list[str]:
        return list(self._queues)

    def waits(self) -> list[asyncio.Task[Any]]:
        return [q.waiting_for for q in self._queues.values()]

    def park(self, did: str, item: Item, waiting_for: asyncio.Task[Any] | None = None) -> dict[str, int]:
        """Queue `item` behind `did`'s parked frames (a new queue waits for `waiting_for`).

        Returns {did: frames dropped} for the repos whose oldest work had to go to respect the bounds.
        """
        q = self._queues.get(did)
        if q is None:
            assert waiting_for is not None, "a new queue needs the resolution it waits for"
            q = self._queues[did] = _Queue(waiting_for)
        elif waiting_for is not None:
            q.waiting_for = waiting_for
        q.items.append(item)
        q.size += item.size
        self.size += item.size
        dropped: dict[str, int] = {}
        while q.size > self.max_repo_bytes and len(q.items) > 1:
            self._drop_oldest(did, q, dropped)
        while self.size > self.max_bytes and self._queues:
            # The queue holding the cursor back the most goes first.
            victim = min(self._queues, key=lambda d: self._low(self._queues[d]) or 0)
            vq = self._queues[victim]
            while vq.items:
                self._drop_oldest(victim, vq, dropped)
            del self._queues[victim]
        return dropped

    def take_ready(self) -> list[Item]:
        """Every parked frame of the repos whose resolution is done, each repo's in order; removed here."""
        out: list[Item] = []
        for did in [d for d, q in self._queues.items() if q.waiting_for.done()]:
            q = self._queues.pop(did)
            self.size -= q.size
            out.extend(q.items)
        return out

    def checkpoint(self) -> Checkpoint:
        """The lot as it is (to put back if the batch that changes it fails)."""
        return {did: (q.waiting_for, tuple(q.items), q.size) for did, q in self._queues.items()}

    def restore(self, saved: Checkpoint) -> None:
        self._queues = {did: _Queue(task, deque(items), size) for did, (task, items, size) in saved.items()}
        self.size = sum(q.size for q in self._queues.values())

    def low_seq(self) -> int | None:
        """The lowest seq parked (the committed cursor must stay below it)."""
        lows = [low for q in self._queues.values() if (low := self._low(q)) is not None]
        return min(lows) if lows else None

    def ready(self) -> bool:
        return any(q.waiting_for.done() for q in self._queues.values())

    @staticmethod
    def _low(q: _Queue) -> int | None:
        seqs = [s for i in q.items if (s := i.seq) is not None]
        return min(seqs) if seqs else None

    def _drop_oldest(self, did: str, q: _Queue, dropped: dict[str, int]) -> None:
        item = q.items.popleft()
        q.size -= item.size
        self.size -= item.size
        dropped[did] = dropped.get(did, 0) + 1
