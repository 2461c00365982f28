"""Identity resolution off the hot path: one background task per DID, a total deadline, per-host limits.

The live pipeline never waits on the network. When a frame needs a DID document (or a verified handle, or
a forced refresh) that is not at hand, it asks for a resolution here and parks the frame (`parking.py`);
the resolution runs as its own task — DID document, then handle, under ONE `asyncio.timeout` for the whole
(including the wait for a per-host slot) — and its outcome, success or failure, is kept for `keep_s` so the
parked frames, processed in a later batch, find it. A DID whose host drips bytes forever thus costs its own
frames one deadline, never anybody else's: after the deadline its commits are handled as unverifiable.

Per-host limits: did:web DIDs are limited per web host, did:plc per PLC directory, so that one slow or
hostile host cannot take every slot (nor every connection of the shared HTTP client).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from prometheus_client import Counter

from core.handles import INVALID_HANDLE, HandleResolver
from core.identity import DidInfo, IdentityResolver, ResolveError

log = structlog.get_logger(__name__)

RESOLUTIONS = Counter("ingest_identity_resolutions_total", "Background identity resolutions, by outcome",
                      ["outcome"])


@dataclass(frozen=True, slots=True)
class Resolved:
    """The outcome of one background resolution."""

    did: str
    info: DidInfo | None
    error: ResolveError | None
    handle: str | None  # bi-directionally verified handle (None without a handle resolver or a DID doc)
    forced: bool  # a fresh fetch, not the cache
    requested_at: float  # monotonic time it was asked for: frames that arrived before it may use it
    kept_until: float

    @property
    def known(self) -> DidInfo | ResolveError:
        return self.info if self.info is not None else self.error or ResolveError(self.did, "timeout")


def host_key(did: str, plc_url: str) -> str:
    """What a resolution of `did` talks to first: its did:web host, or the PLC directory."""
    if did.startswith("did:web:"):
        return "web:" + did[len("did:web:"):].lower()
    return "plc:" + plc_url


class HostLimiter:
    """At most `per_host` concurrent holders per host key; idle keys are forgotten."""

    def __init__(self, per_host: int) -> None:
        self.per_host = max(1, per_host)
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        sem, users = self._slots.get(key) or (asyncio.Semaphore(self.per_host), 0)
        self._slots[key] = (sem, users + 1)
        try:
            async with sem:
                yield
        finally:
            sem, users = self._slots[key]
            if users <= 1:
                del self._slots[key]
            else:
                self._slots[key] = (sem, users - 1)

    def __len__(self) -> int:
        return len(self._slots)


class Resolutions:
    """Background resolutions shared by every source of the process (one task per DID at a time)."""

    def __init__(
        self,
        resolver: IdentityResolver,
        handles: HandleResolver | None = None,
        *,
        deadline_s: float = 5.0,
        per_host: int = 8,
        keep_s: float = 60.0,
        max_kept: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolver, self.handles = resolver, handles
        self.deadline_s, self.keep_s, self.max_kept = deadline_s, keep_s, max_kept
        self.limiter = HostLimiter(per_host)
        self._clock = clock
        self._tasks: dict[str, tuple[asyncio.Task[Resolved], bool, float]] = {}  # did → (task, forced, asked)
        self._kept: OrderedDict[str, Resolved] = OrderedDict()

    def now(self) -> float:
        return self._clock()

    def result(self, did: str) -> Resolved | None:
        r = self._kept.get(did)
        if r is None:
            return None
        if r.kept_until <= self._clock():
            del self._kept[did]
            return None
        return r

    def pending(self, did: str) -> asyncio.Task[Resolved] | None:
        entry = self._tasks.get(did)
        return entry[0] if entry is not None else None

    def request(self, did: str, *, force: bool, after: float) -> asyncio.Task[Resolved]:
        """A resolution of `did` that satisfies a frame that arrived at `after` (joining one under way
        when it does: a forced need is met only by a fetch asked for at or after `after`)."""
        entry = self._tasks.get(did)
        if entry is not None:
            task, forced, asked = entry
            if not force or (forced and asked >= after):
                return task
        asked = self._clock()
        task = asyncio.get_running_loop().create_task(self._run(did, force, asked), name=f"resolve:{did}")
        self._tasks[did] = (task, force, asked)
        task.add_done_callback(functools.partial(self._done, did))
        return task

    async def aclose(self) -> None:
        tasks = [t for t, _, _ in self._tasks.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- internals --------------------------------------------------------------------------------

    def _done(self, did: str, task: asyncio.Task[Resolved]) -> None:
        entry = self._tasks.get(did)
        if entry is not None and entry[0] is task:
            del self._tasks[did]
        if task.cancelled() or task.exception() is not None:
            return
        r = task.result()
        self._kept[did] = r
        self._kept.move_to_end(did)
        while len(self._kept) > self.max_kept:
            self._kept.popitem(last=False)

    async def _run(self, did: str, force: bool, asked: float) -> Resolved:
        info: DidInfo | None = None
        error: ResolveError | None = None
        handle: str | None = None
        try:
            async with asyncio.timeout(self.deadline_s):
                async with self.limiter.slot(host_key(did, self.resolver.plc_url)):
                    info = await self.resolver.resolve(did, force=force)
                    if self.handles is not None:
                        handle = await self.handles.verified_handle(info, force=force)
            RESOLUTIONS.labels("ok").inc()
        except ResolveError as e:
            error = e
            RESOLUTIONS.labels(e.reason).inc()
        except TimeoutError:
            # The handle may have been the slow part: the DID document alone is still worth having.
            # Its handle, though, is then unverified, so not shown.
            if info is None:
                error = ResolveError(did, "timeout", f"identity resolution exceeded {self.deadline_s:g} s")
            elif self.handles is not None:
                handle = INVALID_HANDLE
            RESOLUTIONS.labels("deadline").inc()
            log.warning("identity.deadline", did=did, deadline_s=self.deadline_s, forced=force,
                        doc=info is not None)
        except Exception as e:  # a bug or an unexpected transport error: a failure for this DID only
            error = ResolveError(did, "http_error", f"{type(e).__name__}: {e}"[:200])
            RESOLUTIONS.labels("error").inc()
            log.exception("identity.resolution_failed", did=did)
        return Resolved(did, info, error, handle, force, asked, self._clock() + self.keep_s)
