"""One supervisor for every long-running task of the ingester.

A component is a coroutine `run(stop)` that should only return once `stop` is set. Whatever else
happens to it — any exception, or returning early — is logged with its traceback and the component
is restarted after a `core.retry.Backoff` delay, reset once a run has stayed up `healthy_after_s`.
The supervisor also knows each component's state (and, through an optional probe, whether a source
is connected), which the heartbeat publishes for /health and /ready.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from core.health import ComponentKind, ComponentState
from core.retry import Backoff, pause
from ingester.metrics import COMPONENT_UP, TASK_RESTARTS

log = structlog.get_logger(__name__)

# What a running component says about itself: its state and a few facts (cursor, position…).
Probe = Callable[[], tuple[ComponentState, dict[str, Any]]]
MAX_ERROR_CHARS = 300


@dataclass
class Component:
    name: str
    kind: ComponentKind
    run: Callable[[asyncio.Event], Awaitable[None]]
    probe: Probe | None = None


@dataclass
class Status:
    state: ComponentState = "starting"
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Snapshot:
    name: str
    kind: ComponentKind
    state: ComponentState
    detail: dict[str, Any]


class Supervisor:
    def __init__(self, components: Iterable[Component], *, backoff_base_s: float = 0.5,
                 backoff_cap_s: float = 60.0, healthy_after_s: float = 60.0, shutdown_grace_s: float = 2.0) -> None:
        self.components: dict[str, Component] = {}
        for c in components:
            if c.name in self.components:
                raise ValueError(f"two components named {c.name!r}")
            self.components[c.name] = c
        self.status = {name: Status() for name in self.components}
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.healthy_after_s, self.shutdown_grace_s = healthy_after_s, shutdown_grace_s

    def add(self, c: Component) -> None:
        """Add a component before `run` (e.g. one that needs the supervisor itself, like the heartbeat)."""
        if c.name in self.components:
            raise ValueError(f"two components named {c.name!r}")
        self.components[c.name] = c
        self.status[c.name] = Status()

    def snapshot(self) -> list[Snapshot]:
        """Every component's state now (probing the running ones); keeps the up-gauge current."""
        out = []
        for name, c in self.components.items():
            st = self.status[name]
            state: ComponentState = st.state
            detail: dict[str, Any] = {"restarts": st.restarts}
            if st.last_error is not None:
                detail["last_error"] = st.last_error
            if st.running:
                state = "up"
            if c.probe is not None:  # its facts (a projector's progress) matter while it restarts, too
                try:
                    probed, facts = c.probe()
                    detail.update(facts)
                    if st.running:
                        state = probed
                except Exception as e:  # a broken probe must not take the heartbeat down
                    detail["probe_error"] = repr(e)[:MAX_ERROR_CHARS]
                    if st.running:
                        state = "starting"
            COMPONENT_UP.labels(name).set(1 if state == "up" else 0)
            out.append(Snapshot(name, c.kind, state, detail))
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Run every component until `stop`; then give them `shutdown_grace_s` to return, and cancel the rest."""
        tasks = [asyncio.create_task(self._keep(c, stop), name=f"supervise:{c.name}")
                 for c in self.components.values()]
        try:
            await stop.wait()
            _, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace_s) if tasks else (set(), set())
            for t in pending:
                log.warning("supervisor.cancelled_on_shutdown", component=t.get_name().removeprefix("supervise:"),
                            grace_s=self.shutdown_grace_s)
                t.cancel()
        finally:
            for t in tasks:  # also when we are cancelled ourselves
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _keep(self, c: Component, stop: asyncio.Event) -> None:
        st = self.status[c.name]
        backoff = Backoff(base_s=self.backoff_base_s, cap_s=self.backoff_cap_s)
        try:
            while not stop.is_set():
                st.state, st.running, st.started_at = "starting", True, time.monotonic()
                error = await self._run_once(c, stop)
                st.running = False
                COMPONENT_UP.labels(c.name).set(0)
                if stop.is_set():
                    return
                st.restarts += 1
                st.last_error = error
                TASK_RESTARTS.labels(c.name).inc()
                if time.monotonic() - st.started_at >= self.healthy_after_s:
                    backoff.reset()  # it ran well for a while: this is a fresh failure, not a crash loop
                delay = backoff.next_delay()
                st.state = "restarting"
                log.info("supervisor.restarting", component=c.name, in_s=round(delay, 2), restarts=st.restarts)
                await pause(stop, delay)
        finally:
            st.state, st.running = "stopped", False
            COMPONENT_UP.labels(c.name).set(0)

    async def _run_once(self, c: Component, stop: asyncio.Event) -> str | None:
        """Run the component once; the reason it ended, or None when it ended because of `stop`."""
        try:
            await c.run(stop)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we are being cancelled: shutdown
            # A CancelledError nobody asked for (e.g. an inner task cancelled and re-raised): a death.
            log.exception("supervisor.component_failed", component=c.name, kind=c.kind)
            return "CancelledError"
        except Exception as e:
            log.exception("supervisor.component_failed", component=c.name, kind=c.kind)
            return f"{type(e).__name__}: {e}"[:MAX_ERROR_CHARS]
        if stop.is_set():
            return None
        log.error("supervisor.component_exited", component=c.name, kind=c.kind,
                  reason="returned before shutdown was asked")
        return "exited"
