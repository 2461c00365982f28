from __future__ import annotations

import pytest
import structlog

from core.logs import RepeatFilter


def test_identical_warnings_are_rate_limited_and_counted() -> None:
    now = [0.0]
    f = RepeatFilter(window_s=60, clock=lambda: now[0])
    ev = {"event": "labels.disconnected", "source": "labels:x", "error": "refused", "in_s": 1.0}
    assert f(None, "warning", dict(ev)) == ev
    for i in range(100):
        now[0] += 0.5
        with pytest.raises(structlog.DropEvent):
            f(None, "warning", dict(ev, in_s=float(i)))  # a different delay is the same complaint
    now[0] += 60
    out = f(None, "warning", dict(ev))
    assert out["repeated"] == 100
    # other sources, other events and info lines are untouched
    assert f(None, "warning", dict(ev, source="labels:y"))["source"] == "labels:y"
    assert f(None, "info", dict(ev)) == ev
    assert f(None, "info", dict(ev)) == ev


def test_memory_is_bounded() -> None:
    f = RepeatFilter(max_keys=10)
    for i in range(1000):
        f(None, "warning", {"event": "x", "did": f"did:plc:{i}"})
    assert len(f.seen) == 10
