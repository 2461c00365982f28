"""A frame queue bounded in bytes, not in frames: 20,000 small frames and 20,000 five-MB frames are not
the same memory. Bytes are held from `put` until the consumer calls `done` (received but not yet
committed), so the budget covers the batch being applied too. While the budget is spent `put` waits,
which stops the reader, which stops reading the socket: TCP backpressure on the host instead of RSS.
One frame larger than the whole budget is admitted alone (once nothing else is held), never refused.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence

DEFAULT_BUDGET = 64 * 1024 * 1024


class ByteQueue:
    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        if budget <= 0:
            raise ValueError(f"queue budget must be positive, got {budget}")
        self.budget = budget
        self.held = 0  # bytes put and not yet done
        self._items: deque[bytes] = deque()
        self._unfinished = 0
        self._received_at: deque[float] = deque()  # monotonic arrival of each frame not yet done, in order
        self._changed = asyncio.Condition()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    async def put(self, item: bytes) -> None:
        size = len(item)
        async with self._changed:
            await self._changed.wait_for(lambda: self.held == 0 or self.held + size <= self.budget)
            self._items.append(item)
            self.held += size
            self._unfinished += 1
            self._received_at.append(time.monotonic())
            self._changed.notify_all()

    async def get(self) -> bytes:
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._items))
            return self._items.popleft()

    def get_nowait(self) -> bytes:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def done(self, items: Sequence[bytes]) -> None:
        """The consumer is finished with `items` (committed or set aside): their bytes are free again."""
        async with self._changed:
            self.held -= sum(len(i) for i in items)
            self._unfinished -= len(items)
            for _ in range(min(len(items), len(self._received_at))):
                self._received_at.popleft()  # the consumer finishes frames in the order they came
            self._changed.notify_all()

    def pending_s(self) -> float:
        """How long the oldest frame received and not yet committed has waited; 0 when none is (caught up)."""
        return time.monotonic() - self._received_at[0] if self._received_at else 0.0

    async def join(self) -> None:
        """Wait until every frame put so far is done."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._unfinished == 0)
