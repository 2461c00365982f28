"""Per-repo chain checks (Sync 1.1): `rev` strictly increases; `since`/`prevData` link commits.

A break does not drop data (the per-record rev guard keeps projections convergent); it marks the
repo desynchronized so that a resync (getRepo + diff) can repair what was missed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

_B32 = "234567abcdefghijklmnopqrstuvwxyz"
_B32_INDEX = {c: i for i, c in enumerate(_B32)}
# Revs stamped further ahead than this are refused: a rev from the future would freeze the repo's rev
# guard for everything written before that time. The default of `REV_FUTURE_SKEW_S`.
DEFAULT_FUTURE_SKEW_S = 300.0
MAX_CLOCK_SKEW_US = int(DEFAULT_FUTURE_SKEW_S * 1_000_000)


@dataclass(frozen=True, slots=True)
class ChainState:
    rev: str
    data_cid: str | None
    sync_status: str  # synchronized | desynchronized
    reason: str | None = None


def tid_micros(tid: str) -> int | None:
    if len(tid) != 13:
        return None
    n = 0
    for c in tid:
        i = _B32_INDEX.get(c)
        if i is None:
            return None
        n = n * 32 + i
    return n >> 10


def too_far_in_future(rev: str, now_us: int | None = None, skew_s: float = DEFAULT_FUTURE_SKEW_S) -> bool:
    ts = tid_micros(rev)
    now = now_us if now_us is not None else time.time_ns() // 1000
    return ts is not None and ts > now + int(skew_s * 1_000_000)


def rev_error(rev: str, skew_s: float = DEFAULT_FUTURE_SKEW_S, now_us: int | None = None) -> str | None:
    """Why `rev` cannot be accepted (as a commit's, a #sync's or a snapshot's rev), or None.

    The one rule for every rev that may move a repo's chain: a TID, at most `skew_s` ahead of our clock.
    A stored rev that fails it is implausible: it can only come from an earlier bug or a since-lowered
    setting (a rev we accepted was at most `skew_s` ahead then, so it is even less ahead now).
    """
    if tid_micros(rev) is None:
        return "rev is not a TID"
    if too_far_in_future(rev, now_us, skew_s):
        return f"rev is more than {skew_s:g} s in the future"
    return None


def advance(state: ChainState | None, rev: str, since: str | None, prev_data: str | None,
            data_cid: str | None) -> ChainState:
    """The repo state after accepting a commit (callers have already refused rev <= state.rev)."""
    if state is None:
        if since is None:
            return ChainState(rev, data_cid, "synchronized")
        return ChainState(rev, data_cid, "desynchronized", "first seen mid-chain; needs backfill")
    if since != state.rev:
        return ChainState(rev, data_cid, "desynchronized", f"since {since} != last rev {state.rev}")
    if prev_data is not None and state.data_cid is not None and prev_data != state.data_cid:
        return ChainState(rev, data_cid, "desynchronized", f"prevData {prev_data} != last data {state.data_cid}")
    return ChainState(rev, data_cid, state.sync_status, state.reason)
