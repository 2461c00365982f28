"""The supervisor: any death is logged with its traceback and restarted; shutdown leaves nothing behind."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from ingester.supervisor import Component, Supervisor


def restarts(name: str) -> float:
    return REGISTRY.get_sample_value("ingester_task_restarts_total", {"component": name}) or 0.0


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


@pytest.mark.parametrize("error", [RuntimeError("boom"), ValueError("bad value"), KeyError("missing")])
async def test_any_exception_is_logged_with_traceback_and_restarted(error: Exception) -> None:
    name = f"flaky-{type(error).__name__}"
    runs: list[int] = []

    async def flaky(stop: asyncio.Event) -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise error
        await stop.wait()  # the third run stays up

    before, stop = restarts(name), asyncio.Event()
    supervisor = Supervisor([Component(name, "source", flaky)], backoff_base_s=0.01, backoff_cap_s=0.02)
    with capture_logs() as logs:
        task = asyncio.create_task(supervisor.run(stop))
        await wait_for(lambda: len(runs) == 3 and supervisor.status[name].running)
        assert [s.state for s in supervisor.snapshot()] == ["up"]
        stop.set()
        await asyncio.wait_for(task, 10)
    failures = [e for e in logs if e["event"] == "supervisor.component_failed"]
    assert len(failures) == 2 and all(e["component"] == name and e["exc_info"] for e in failures)
    assert all(e["log_level"] == "error" for e in failures)  # log.exception: error level, with the traceback
    assert restarts(name) - before == 2
    last_error = supervisor.status[name].last_error
    assert last_error is not None and type(error).__name__ in last_error
    assert supervisor.status[name].state == "stopped"


async def test_returning_early_and_a_stray_cancellation_count_as_deaths() -> None:
    runs: list[str] = []

    async def quits(stop: asyncio.Event) -> None:
        runs.append("quit")
        if len(runs) == 1:
            return  # returned without being asked
        if len(runs) == 2:
            raise asyncio.CancelledError  # e.g. an inner task's cancellation leaking out
        await stop.wait()

    stop = asyncio.Event()
    supervisor = Supervisor([Component("quitter", "worker", quits)], backoff_base_s=0.01, backoff_cap_s=0.02)
    with capture_logs() as logs:
        task = asyncio.create_task(supervisor.run(stop))
        await wait_for(lambda: len(runs) == 3)
        stop.set()
        await asyncio.wait_for(task, 10)
    events = [e["event"] for e in logs]
    assert "supervisor.component_exited" in events and "supervisor.component_failed" in events
    assert supervisor.status["quitter"].restarts == 2


async def test_shutdown_is_clean_even_for_a_component_that_ignores_stop() -> None:
    started = asyncio.Event()
    cleaned: list[str] = []

    async def polite(stop: asyncio.Event) -> None:
        await stop.wait()
        cleaned.append("polite")

    async def stubborn(stop: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.append("stubborn")

    before = other_tasks()
    stop = asyncio.Event()
    supervisor = Supervisor([Component("polite", "worker", polite), Component("stubborn", "worker", stubborn)],
                            shutdown_grace_s=0.05)
    with warnings.catch_warnings(record=True) as caught, capture_logs() as logs:
        warnings.simplefilter("always")
        task = asyncio.create_task(supervisor.run(stop))
        await started.wait()
        stop.set()
        await asyncio.wait_for(task, 10)
    assert sorted(cleaned) == ["polite", "stubborn"]
    assert other_tasks() <= before  # no task left behind
    assert not [w for w in caught if "never awaited" in str(w.message) or "destroyed" in str(w.message)]
    assert [e["component"] for e in logs if e["event"] == "supervisor.cancelled_on_shutdown"] == ["stubborn"]
    assert {s.state for s in supervisor.snapshot()} == {"stopped"}


async def test_cancelling_the_supervisor_cancels_every_component() -> None:
    running = asyncio.Event()

    async def forever(stop: asyncio.Event) -> None:
        running.set()
        await asyncio.sleep(3600)

    before = other_tasks()
    supervisor = Supervisor([Component("forever", "worker", forever)])
    task = asyncio.create_task(supervisor.run(asyncio.Event()))
    await running.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert other_tasks() <= before


async def test_probe_decides_the_state_and_a_broken_probe_does_not_break_the_snapshot() -> None:
    connected = False

    def probe() -> tuple[Any, dict[str, Any]]:
        if connected is None:
            raise RuntimeError("probe bug")
        return ("up" if connected else "connecting"), {"cursor": 7}

    async def wait(stop: asyncio.Event) -> None:
        await stop.wait()

    stop = asyncio.Event()
    supervisor = Supervisor([Component("src", "source", wait, probe=probe)])
    task = asyncio.create_task(supervisor.run(stop))
    await wait_for(lambda: supervisor.status["src"].running)
    snap = supervisor.snapshot()[0]
    assert (snap.state, snap.detail["cursor"]) == ("connecting", 7)
    assert REGISTRY.get_sample_value("ingester_component_up", {"component": "src"}) == 0
    connected = True
    assert supervisor.snapshot()[0].state == "up"
    assert REGISTRY.get_sample_value("ingester_component_up", {"component": "src"}) == 1
    connected = None  # type: ignore[assignment]
    snap = supervisor.snapshot()[0]
    assert snap.state == "starting" and "probe bug" in snap.detail["probe_error"]
    stop.set()
    await asyncio.wait_for(task, 10)


def test_component_names_are_unique() -> None:
    async def noop(stop: asyncio.Event) -> None:
        await stop.wait()

    with pytest.raises(ValueError, match="two components"):
        Supervisor([Component("a", "worker", noop), Component("a", "worker", noop)])


async def test_the_whole_ingester_shuts_down_cleanly(db_url: str, tmp_path: Any) -> None:
    """Every component (sources that cannot connect, projector, resync, blob mirror, checker, heartbeat) stops
    on `stop`: no task left, no warning, and the heartbeat rows say `stopped`."""
    import socket

    from core.db.connect import connect
    from ingester.service import Ingester
    from ingester.settings import IngesterSettings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = IngesterSettings(database_url=db_url, firehose_hosts=f"ws://127.0.0.1:{port}",
                                jetstream_urls=f"ws://127.0.0.1:{port}", labelers=f"http://127.0.0.1:{port}",
                                blob_mirror=True, resync_enabled=True, health_heartbeat_s=0.05,
                                outbound_allow_private=True, **{"APPVIEW_DATA_DIR": tmp_path})
    before = other_tasks()
    ingester, stop = Ingester(settings, db_url), asyncio.Event()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = asyncio.create_task(ingester.run(stop))
        await wait_for(lambda: ingester.supervisor is not None
                       and all(st.running for st in ingester.supervisor.status.values()))
        assert ingester.supervisor is not None
        names = set(ingester.supervisor.status)
        stop.set()
        await asyncio.wait_for(task, 30)
    assert names == {"projector", "log-maintenance", f"firehose:127.0.0.1:{port}", f"jetstream-v2:127.0.0.1:{port}",
                     f"labels:127.0.0.1:{port}", "resync", "resync-scheduler", "blob-mirror",
                     "playability-checker", "heartbeat"}
    assert other_tasks() <= before
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning | ResourceWarning)], caught
    async with await connect(db_url) as conn:
        rows = await (await conn.execute("SELECT component, state FROM component_health")).fetchall()
    assert {c for c, _ in rows} == names and {s for _, s in rows} == {"stopped"}
