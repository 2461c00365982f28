"""Where a source starts: committed cursor > configured start; a forced (command-line) cursor wins once."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cli.main import _seq
from ingester.settings import IngesterSettings
from ingester.sources.start import StartCursors

cursors = st.none() | st.integers(min_value=0, max_value=2**63 - 1)


@given(committed=cursors, configured=cursors, forced=cursors)
def test_the_rule(committed: int | None, configured: int | None, forced: int | None) -> None:
    start = StartCursors(firehose=configured)
    start.force(firehose=forced)
    first = start.pick("firehose", "firehose:a", committed)
    assert first == (forced if forced is not None else committed if committed is not None else configured)
    # once per source: a reconnect resumes from what was committed
    again = start.pick("firehose", "firehose:a", committed)
    assert again == (committed if committed is not None else configured)
    # the other kind is untouched
    assert start.pick("jetstream", "jetstream-v2:b", None) is None


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3"])
def test_absurd_start_cursors_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        StartCursors(firehose=bad)  # type: ignore[arg-type]


def test_settings_and_command_line_refuse_negative_or_garbage() -> None:
    assert IngesterSettings(firehose_start_cursor=0, jetstream_start_cursor=7).jetstream_start_cursor == 7
    with pytest.raises(ValidationError):
        IngesterSettings(firehose_start_cursor=-1)
    assert _seq("0") == 0 and _seq("123456789012") == 123456789012
    for bad in ("-1", "1e3", " 1", "", "0x10", "\u0661\u0662", str(2**63)):
        with pytest.raises(argparse.ArgumentTypeError):
            _seq(bad)
