"""The log's vocabulary: what the ingester appends and the projector folds.

Events are frozen dataclasses so that a decoded frame can be handed between stages without
anyone mutating it behind another stage's back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "delete"]
RepoEventKind = Literal["identity", "account", "sync", "desync", "forged", "resync"]

# Collections we index: plyr's own and teal.fm's (plays, now-playing status). The scope check is a
# prefix test so that the decode fast path and the op filter agree. A `fm.teal.*` collection we
# have no lexicon for is logged as rejected ("unknown collection"), re-projectable later.
IN_SCOPE_PREFIXES: tuple[str, ...] = ("fm.plyr.", "fm.teal.")


def in_scope(collection: str) -> bool:
    return collection.startswith(IN_SCOPE_PREFIXES)


@dataclass(frozen=True, slots=True)
class RecordOp:
    """One record operation of a commit, after decoding (record is DAG-JSON shaped)."""

    action: Action
    collection: str
    rkey: str
    cid: str | None
    prev: str | None
    record: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Commit:
    """A decoded `#commit` frame, restricted to in-scope ops (out-of-scope ops are dropped)."""

    seq: int
    did: str
    rev: str
    since: str | None
    commit_cid: str
    prev_data: str | None
    data_cid: str | None  # MST root of this commit, from the signed commit block
    ops: tuple[RecordOp, ...]
    signed_bytes: bytes  # DAG-CBOR of the commit block without `sig`
    sig: bytes
    time: str
    # Why an in-scope op does not hold in the signed MST (`ops` itself is unsigned), None when all are proven
    proof_error: str | None = None


@dataclass(frozen=True, slots=True)
class IdentityFrame:
    seq: int
    did: str
    handle: str | None
    time: str


@dataclass(frozen=True, slots=True)
class AccountFrame:
    seq: int
    did: str
    active: bool
    status: str | None
    time: str


@dataclass(frozen=True, slots=True)
class SyncFrame:
    seq: int
    did: str
    rev: str
    commit_cid: str | None
    data_cid: str | None
    signed_bytes: bytes
    sig: bytes
    time: str


@dataclass(frozen=True, slots=True)
class InfoFrame:
    name: str
    message: str | None


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    error: str
    message: str | None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A frame we decoded only far enough to know it is out of scope."""

    seq: int | None
    did: str | None


Frame = Commit | IdentityFrame | AccountFrame | SyncFrame | InfoFrame | ErrorFrame | Skipped


@dataclass(frozen=True, slots=True)
class RecordEvent:
    """One row of `record_event`, as appended."""

    did: str
    collection: str
    rkey: str
    rev: str
    action: Action
    cid: str | None
    record: dict[str, Any] | None
    source: str
    source_seq: int | None
    verified: bool
    rejected: str | None = None


@dataclass(frozen=True, slots=True)
class RepoEvent:
    """One row of `repo_event`: identity, account, sync and desync markers."""

    did: str
    kind: RepoEventKind
    payload: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    source_seq: int | None = None
    rev: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedRecord:
    """A `record_event` row as read back from the log."""

    seq: int
    did: str
    collection: str
    rkey: str
    rev: str
    action: Action
    cid: str | None
    record: dict[str, Any] | None
    verified: bool
    rejected: str | None
    received_at: Any  # datetime; kept opaque so core stays free of tz policy

    @property
    def uri(self) -> str:
        return f"at://{self.did}/{self.collection}/{self.rkey}"


@dataclass(frozen=True, slots=True)
class LoggedRepo:
    """A `repo_event` row as read back from the log."""

    seq: int
    did: str
    kind: str
    rev: str | None
    payload: dict[str, Any]
    received_at: Any


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """One row of `label_event`, as appended: a label from a labeler, verified or rejected."""

    src: str | None
    uri: str | None
    val: str | None
    label: dict[str, Any] | None  # DAG-JSON shaped (`sig` as {"$bytes": …}); None if unstorable
    digest: str  # sha256 hex of the label's DAG-CBOR, signature included: the dedup key
    source: str
    source_seq: int | None
    verified: bool
    rejected: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedLabel:
    """A `label_event` row as read back from the log."""

    seq: int
    src: str | None
    uri: str | None
    val: str | None
    label: dict[str, Any] | None
    verified: bool
    rejected: str | None
    received_at: Any


LoggedEvent = LoggedRecord | LoggedRepo | LoggedLabel
