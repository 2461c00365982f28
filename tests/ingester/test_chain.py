"""ingester.verify.chain: TID timestamps, the future-rev guard and the per-repo chain state machine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingester.verify.chain import MAX_CLOCK_SKEW_US, ChainState, advance, tid_micros, too_far_in_future
from tests.ingester.framekit import tid

NOW_US = 1_795_000_000_000_000  # 2026-11-18
D1, D2, D3 = "bafyreidata1", "bafyreidata2", "bafyreidata3"
R1, R2, R3 = tid(NOW_US), tid(NOW_US + 1), tid(NOW_US + 2)


# ---------------------------------------------------------------- tid_micros


def test_tid_micros_known_values() -> None:
    assert tid_micros("2222222222222") == 0
    assert tid_micros("2222222222322") == 1  # the last two chars (10 bits) are the clock id…
    assert tid_micros("22222222222zz") == 0  # …which is not time: this is clock id 1023 at t=0
    assert tid_micros("3n32rorlljc2e") == 1_795_527_880_001_000  # a real PDS rev: 2026-11-24T13:44:40.001Z
    assert tid_micros(tid(NOW_US, clock_id=1023)) == NOW_US


@given(st.integers(0, 2**53 - 1), st.integers(0, 1023))
def test_tid_micros_roundtrip_and_order(micros: int, clock_id: int) -> None:
    t = tid(micros, clock_id)
    assert len(t) == 13 and tid_micros(t) == micros
    # base32-sortable: string order is time order, which the rev guard (`rev <= state.rev`) relies on
    assert (t < tid(micros + 1)) and (micros == 0 or tid(micros - 1, 1023) < t)


@pytest.mark.parametrize("bad", ["", "222222222222", "22222222222222", "222222222222A", "22222222222 2",
                                 "2222222222220", "222222222222!", "3kaaaaaaaa\x00a2"])
def test_tid_micros_rejects_malformed(bad: str) -> None:
    assert tid_micros(bad) is None


# ---------------------------------------------------------------- too_far_in_future


def test_too_far_in_future_boundary() -> None:
    assert not too_far_in_future(tid(NOW_US), NOW_US)
    assert not too_far_in_future(tid(NOW_US - 10**12), NOW_US)  # the past is fine, however old
    assert not too_far_in_future(tid(NOW_US + MAX_CLOCK_SKEW_US), NOW_US)  # exactly the tolerated skew
    assert too_far_in_future(tid(NOW_US + MAX_CLOCK_SKEW_US + 1), NOW_US)
    assert too_far_in_future(tid(2**53 - 1), NOW_US)


def test_too_far_in_future_uses_the_wall_clock_by_default() -> None:
    import time

    now = time.time_ns() // 1000
    assert not too_far_in_future(tid(now))
    assert too_far_in_future(tid(now + 2 * MAX_CLOCK_SKEW_US))


def test_unparseable_revs_are_not_judged_future() -> None:
    # Not a TID: the guard cannot tell, and says no (see the report on non-TID revs).
    assert not too_far_in_future("zzzzzzzzzzzzzzzz", NOW_US)
    assert not too_far_in_future("", NOW_US)


# ---------------------------------------------------------------- advance


def test_first_commit_of_a_new_repo_is_synchronized() -> None:
    assert advance(None, R1, None, None, D1) == ChainState(R1, D1, "synchronized")


def test_first_sight_mid_chain_needs_backfill() -> None:
    assert advance(None, R2, R1, D1, D2) == ChainState(R2, D2, "desynchronized",
                                                       "first seen mid-chain; needs backfill")


def test_linked_commit_keeps_the_repo_synchronized() -> None:
    s1 = ChainState(R1, D1, "synchronized")
    assert advance(s1, R2, R1, D1, D2) == ChainState(R2, D2, "synchronized")


def test_since_mismatch_desynchronizes() -> None:
    s1 = ChainState(R1, D1, "synchronized")
    assert advance(s1, R3, R2, D1, D3) == ChainState(R3, D3, "desynchronized", f"since {R2} != last rev {R1}")
    # a commit without `since` on a repo we follow also breaks the chain
    assert advance(s1, R3, None, D1, D3).sync_status == "desynchronized"


def test_prev_data_mismatch_desynchronizes() -> None:
    s1 = ChainState(R1, D1, "synchronized")
    assert advance(s1, R2, R1, D3, D2) == ChainState(R2, D2, "desynchronized", f"prevData {D3} != last data {D1}")


def test_missing_prev_data_or_unknown_data_cid_is_tolerated() -> None:
    # pre-Sync-1.1 commits have no prevData; a state from before we knew data CIDs has none either
    s1 = ChainState(R1, D1, "synchronized")
    assert advance(s1, R2, R1, None, D2) == ChainState(R2, D2, "synchronized")
    assert advance(ChainState(R1, None, "synchronized"), R2, R1, D1, D2) == ChainState(R2, D2, "synchronized")


def test_desynchronized_is_sticky_and_keeps_its_reason() -> None:
    broken = ChainState(R1, D1, "desynchronized", "since x != last rev y")
    assert advance(broken, R2, R1, D1, D2) == ChainState(R2, D2, "desynchronized", "since x != last rev y")


def test_a_new_break_on_a_desynchronized_repo_records_the_new_reason() -> None:
    broken = ChainState(R1, D1, "desynchronized", "old reason")
    assert advance(broken, R3, R2, D1, D3).reason == f"since {R2} != last rev {R1}"


@given(st.lists(st.sampled_from(["link", "skip", "bad-data"]), min_size=1, max_size=12))
def test_status_is_synchronized_iff_every_link_held(steps: list[str]) -> None:
    micros = NOW_US
    state = advance(None, tid(micros), None, None, "d0")
    rev, data = state.rev, state.data_cid
    for i, step in enumerate(steps, 1):
        micros += 2
        new_rev, new_data = tid(micros), f"d{i}"
        since = tid(micros - 1) if step == "skip" else rev
        prev = "elsewhere" if step == "bad-data" else data
        state = advance(state, new_rev, since, prev, new_data)
        assert (state.rev, state.data_cid) == (new_rev, new_data)
        rev, data = new_rev, new_data
    assert (state.sync_status == "synchronized") == all(s == "link" for s in steps)
    assert (state.reason is None) == (state.sync_status == "synchronized")
