"""The diff of a repo snapshot against what the log already says about that repo.

Pure logic. Every difference becomes an event stamped with the snapshot's rev, which is newer than anything
the snapshot supersedes, so the projections' per-record rev guard applies it; and it is *not* newer than
what live events wrote after the snapshot, so those win. Keys our log knows at a rev at or past the
snapshot's are left alone: the log is already ahead of the snapshot there.

Unlike Tap (sync.md §3.4), records we hold that the snapshot no longer has become **delete** events:
that is how deletions made while we were not listening reach the projections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.events import Action


@dataclass(frozen=True, slots=True)
class Stored:
    """The latest logged event of one record key."""

    rev: str
    cid: str | None  # None: the latest event is a delete


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    path: str  # "collection/rkey"
    cid: str | None


def diff(stored: Mapping[str, Stored], fetched: Mapping[str, str], rev: str) -> list[Change]:
    """Changes that bring `stored` to `fetched` (path → CID, the snapshot at `rev`), in path order."""
    out: list[Change] = []
    for path, cid in fetched.items():
        s = stored.get(path)
        if s is not None and s.rev >= rev:
            continue  # the log is at or past the snapshot for this key
        if s is None or s.cid is None:
            out.append(Change("create", path, cid))
        elif s.cid != cid:
            out.append(Change("update", path, cid))
    for path, s in stored.items():
        if s.cid is not None and s.rev < rev and path not in fetched:
            out.append(Change("delete", path, None))
    out.sort(key=lambda c: c.path)
    return out
