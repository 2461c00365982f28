"""Hypothesis: the snapshot diff, folded under the per-record rev guard, converges whatever we saw before.

A random history of commits (creates, updates, deletes over a few keys) is the truth. The log holds any
order-preserving subset of a prefix of it (frames dropped on the floor, a late start); a snapshot is taken at
any later point; live commits after the snapshot follow. The fold of log + diff + the commits after the
snapshot must equal the fold of the whole history, deletions included.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingester.backfill.diff import Stored, diff

PATHS = ["fm.plyr.track/a", "fm.plyr.track/b", "fm.plyr.like/a", "fm.plyr.list/z", "fm.plyr.track/c"]
Event = tuple[str, str, str, str | None]  # (rev, path, action, cid)


def rev(i: int) -> str:
    return f"3k{i:011d}"  # fixed width: string order == numeric order, like TIDs


@st.composite
def histories(draw: st.DrawFn) -> list[list[Event]]:
    live: dict[str, str] = {}
    commits: list[list[Event]] = []
    for i in range(draw(st.integers(1, 25))):
        ops: list[Event] = []
        for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3, unique=True)):
            if path in live and draw(st.booleans()):
                ops.append((rev(i + 1), path, "delete", None))
                del live[path]
            else:
                cid = f"cid-{i}-{path}"
                ops.append((rev(i + 1), path, "update" if path in live else "create", cid))
                live[path] = cid
        commits.append(ops)
    return commits


def fold(events: list[Event], state: dict[str, tuple[str, str | None]] | None = None
         ) -> dict[str, tuple[str, str | None]]:
    """The projections' rule: an event applies only when newer than the key's stored rev."""
    state = dict(state or {})
    for r, path, action, cid in events:
        if path in state and r <= state[path][0]:
            continue
        state[path] = (r, None if action == "delete" else cid)
    return state


def live(state: dict[str, tuple[str, str | None]]) -> dict[str, str]:
    return {p: c for p, (_, c) in state.items() if c is not None}


def flat(commits: list[list[Event]]) -> list[Event]:
    return [e for c in commits for e in c]


@settings(max_examples=400, deadline=None)
@given(data=st.data(), history=histories())
def test_log_plus_diff_plus_later_commits_equals_the_truth(data: st.DataObject, history: list[list[Event]]) -> None:
    n = len(history)
    seen_upto = data.draw(st.integers(0, n), label="log prefix")
    snap_at = data.draw(st.integers(seen_upto, n), label="snapshot")
    kept = data.draw(st.lists(st.booleans(), min_size=seen_upto, max_size=seen_upto), label="frames kept")
    log = flat([c for c, k in zip(history[:seen_upto], kept, strict=True) if k])

    stored_state = fold(log)
    stored = {p: Stored(r, c) for p, (r, c) in stored_state.items()}
    snapshot = live(fold(flat(history[:snap_at])))
    snap_rev = rev(snap_at) if snap_at else rev(0)
    changes = diff(stored, snapshot, snap_rev)
    diff_events = [(snap_rev, c.path, c.action, c.cid) for c in changes]

    # Right after the diff, our live records are exactly the snapshot's.
    assert live(fold(diff_events, stored_state)) == snapshot
    # And with the commits after the snapshot (replayed or live), exactly the truth.
    truth = live(fold(flat(history)))
    assert live(fold(flat(history[snap_at:]), fold(diff_events, stored_state))) == truth


@settings(max_examples=200, deadline=None)
@given(data=st.data(), history=histories())
def test_a_log_ahead_of_the_snapshot_is_never_rolled_back(data: st.DataObject, history: list[list[Event]]) -> None:
    """A stale snapshot (e.g. from a lagging mirror) must not undo what the log already has."""
    n = len(history)
    snap_at = data.draw(st.integers(0, n))
    seen_upto = data.draw(st.integers(snap_at, n))
    stored_state = fold(flat(history[:seen_upto]))
    stored = {p: Stored(r, c) for p, (r, c) in stored_state.items()}
    snap_rev = rev(snap_at)
    changes = diff(stored, live(fold(flat(history[:snap_at]))), snap_rev)
    after = fold([(snap_rev, c.path, c.action, c.cid) for c in changes], stored_state)
    assert live(fold(flat(history[seen_upto:]), after)) == live(fold(flat(history)))


@given(st.dictionaries(st.sampled_from(PATHS), st.text(min_size=1, max_size=4), max_size=5))
def test_diff_against_itself_is_empty(snapshot: dict[str, str]) -> None:
    stored = {p: Stored(rev(1), c) for p, c in snapshot.items()}
    assert diff(stored, snapshot, rev(2)) == []


def test_deletes_carry_the_snapshot_rev_and_come_out_in_path_order() -> None:
    stored = {"fm.plyr.track/b": Stored(rev(1), "x"), "fm.plyr.track/a": Stored(rev(1), "y"),
              "fm.plyr.like/q": Stored(rev(1), None)}
    changes = diff(stored, {"fm.plyr.track/c": "z", "fm.plyr.track/a": "y2"}, rev(5))
    assert [(c.action, c.path, c.cid) for c in changes] == [
        ("update", "fm.plyr.track/a", "y2"), ("delete", "fm.plyr.track/b", None), ("create", "fm.plyr.track/c", "z")]
