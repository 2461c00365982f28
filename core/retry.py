"""The one retry policy of the codebase: capped exponential backoff with jitter, stop-aware waits.

Every loop that retries (a source reconnecting, a task restarted by its supervisor, an HTTP request
retried on 429/5xx, a database that went away) takes its delays from a `Backoff`, so the policy is
tuned in one place and a `Retry-After` from the peer always wins over our own guess.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field


async def pause(stop: asyncio.Event | None, seconds: float) -> None:
    """Sleep `seconds`, returning early when `stop` is set."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


@dataclass
class Backoff:
    """Delays base·2ⁿ capped at `cap_s`; with jitter each is drawn from [½·d, d] (never a thundering herd)."""

    base_s: float = 0.5
    cap_s: float = 30.0
    jitter: bool = True
    attempt: int = field(default=0, init=False)

    def next_delay(self, retry_after: float | None = None) -> float:
        """The delay before the next attempt; counts the attempt. `retry_after` (capped) overrides it."""
        self.attempt += 1
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, max(self.cap_s, 300.0))
        delay: float = min(self.cap_s, self.base_s * 2.0 ** min(self.attempt - 1, 30))
        return delay * random.uniform(0.5, 1.0) if self.jitter else delay

    def reset(self) -> None:
        """Call after a success: the next failure starts from `base_s` again."""
        self.attempt = 0

    async def wait(self, stop: asyncio.Event | None = None, retry_after: float | None = None) -> float:
        """Sleep the next delay (returning early on `stop`); returns the delay chosen."""
        delay = self.next_delay(retry_after)
        await pause(stop, delay)
        return delay
