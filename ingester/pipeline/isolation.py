"""No single frame can stop a source: a batch that fails is bisected down to the frame that breaks it.

A batch is applied in one transaction. When that fails for a reason that is not the infrastructure's
(a value Postgres refuses, a bug tripped by one odd frame…), retrying it would fail forever and stop
the source for good. Instead the batch is split in two halves applied in order, recursively, until the
failing frame is alone: that one is set aside as a durable reject (the cursor moves past it) and every
other frame is applied as usual. A poison frame in a batch of n costs ~2·log₂(n) extra attempts.

Infrastructure errors — the database down or the connection lost (`psycopg.OperationalError`,
`OSError`) — are never a frame's fault: they propagate unchanged for the source to retry the whole
batch with backoff, and are never turned into rejects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import psycopg
import structlog

log = structlog.get_logger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (psycopg.OperationalError, OSError)

F = TypeVar("F")
R = TypeVar("R")


async def bisect(
    frames: Sequence[F],
    apply: Callable[[Sequence[F]], Awaitable[R]],
    set_aside: Callable[[F, Exception], Awaitable[R]],
    merge: Callable[[R, R], R],
    *,
    source: str,
) -> R:
    """`apply(frames)`; on a non-infrastructure failure, apply each half in order (recursively) and
    `set_aside` a single failing frame. Results of the pieces are combined with `merge` (left, right)."""
    try:
        return await apply(frames)
    except TRANSIENT:
        raise
    except Exception as e:
        if len(frames) == 1:
            log.error("ingest.poison_frame", source=source, error=repr(e)[:500])
            return await set_aside(frames[0], e)
        log.warning("ingest.batch_bisected", source=source, frames=len(frames), error=repr(e)[:500])
        mid = len(frames) // 2
        left = await bisect(frames[:mid], apply, set_aside, merge, source=source)
        right = await bisect(frames[mid:], apply, set_aside, merge, source=source)
        return merge(left, right)
