"""A firehose source that dies of a bug (not a network error) is logged with its traceback, restarted by the
supervisor, resumes from its committed cursor, and the frames after the restart reach the projections."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from ingester.sources.firehose import FirehoseSource, source_name
from tests.e2e.conftest import Query, RunningIngester, eventually, ingester_settings
from tests.e2e.test_ingest_localnet import handle, track
from tests.localnet.peer import Localnet, Xrpc


async def test_a_source_dying_of_any_exception_is_restarted_and_catches_up(
        xrpc: Xrpc, localnet: Localnet, q: Query, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    errors: list[Exception] = [RuntimeError("decoder bug"), ValueError("bad value"), KeyError("missing key")]
    real_frame = FirehoseSource.frame

    def buggy(self: FirehoseSource, message: str | bytes) -> bytes | None:
        # The reader task dies on the first frames that carry a track, once per kind of error.
        if isinstance(message, bytes) and b"fm.plyr.track" in message and errors:
            raise errors.pop(0)
        return real_frame(self, message)

    monkeypatch.setattr(FirehoseSource, "frame", buggy)
    name = source_name(localnet.ws_url)
    before = REGISTRY.get_sample_value("ingester_task_restarts_total", {"component": name}) or 0.0
    running = RunningIngester(ingester_settings(db_url, localnet, supervisor_backoff_cap_s=0.2), db_url)
    with capture_logs() as logs:
        await running.start()
        try:
            alice = await xrpc.create_account(handle("alice"))
            first = await xrpc.create(alice, "fm.plyr.track", track("Crashed on",
                                                                     audioUrl="https://audio.plyr.fm/a.mp3"))
            await eventually(q, "SELECT title FROM track WHERE uri = %s", [("Crashed on",)], first["uri"],
                             timeout=60)
            # ...and a frame written after the restarts is applied too.
            second = await xrpc.create(alice, "fm.plyr.track", track("After", audioUrl="https://audio.plyr.fm/b.mp3"))
            await eventually(q, "SELECT title FROM track WHERE uri = %s", [("After",)], second["uri"], timeout=60)
        finally:
            await running.stop()
    assert not errors
    failures = [e for e in logs if e["event"] == "supervisor.component_failed" and e["component"] == name]
    assert len(failures) == 3 and all(e["exc_info"] for e in failures)
    assert (REGISTRY.get_sample_value("ingester_task_restarts_total", {"component": name}) or 0.0) - before == 3
    assert running.ingester is not None and len(running.ingester.sources) == 1  # the live source replaced
