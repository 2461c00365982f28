"""Per-source sequence discipline: which frame moves the cursor, which is a duplicate, which is a reset.

The cursor is the one thing a single hostile frame could poison for good (a seq of 2⁶³ made every commit
fail; a seq of 2⁶³−1 would make every later frame look like a replay). So a frame's `seq` is judged
against the last accepted one before anything else:

- **normal**: `last < seq ≤ last + max_jump` → accepted; the cursor may move to it.
- **duplicate**: `seq ≤ last` (a replay after an inclusive reconnect, or a host sending old frames)
  → dropped before any work, counted.
- **jump**: `seq > last + max_jump` → its content is processed (content is guarded by signatures and
  rev checks, not by seq) but the cursor stays put until the *next* seq'd frame confirms the new
  position (it lies within `max_jump` above the jumper). An isolated absurd seq is thus an outlier
  that never reaches the cursor.
- **reset**: the first seq'd frame of a connection is *below* the cursor we asked for, i.e. the host
  did not honour it (its seq space restarted, or it is another host behind the same name). It is
  processed without moving the cursor; if the next frame continues upward in that lower space (still
  at or below our old position), the reset is confirmed: logged loudly and the cursor *follows the
  host down* (per-repo revs make the re-delivered content harmless). Otherwise it was an outlier.
  Mid-connection, going backwards is never a reset, only duplicates.

State changes are staged in a `SeqCheck` and kept only once the batch they judged is committed, so a
batch retried after a database error is judged exactly as the first time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import Enum

import structlog

from ingester import metrics

log = structlog.get_logger(__name__)

SEQ_MAX = 2**63 - 1  # Postgres bigint; the lexicon's integer is 64-bit signed
MAX_SEQ_JUMP = 1_000_000_000  # ~1 month of relay traffic at 350 events/s
PREFIX_BYTES = 256  # of a rejected frame, kept for forensics


class Verdict(Enum):
    ACCEPT = "accept"  # process it; the cursor may move to its seq
    PENDING = "pending"  # process it; the cursor waits for confirmation (jump or reset candidate)
    DUPLICATE = "duplicate"  # drop it


@dataclass(frozen=True, slots=True)
class Reject:
    """One frame set aside, kept durably in `frame_reject`. `kind` is a small fixed vocabulary (the
    metric label); `reason` says exactly what was wrong."""

    source: str
    seq: int | None
    kind: str
    reason: str
    size: int
    sha256: bytes | None
    prefix: bytes | None

    @classmethod
    def of(cls, source: str, raw: bytes | str | None, kind: str, reason: str, *, seq: int | None = None,
           size: int | None = None) -> Reject:
        data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
        return cls(source, seq if seq is not None and 0 < seq <= SEQ_MAX else None, kind,
                   reason.replace("\x00", "\\0")[:1000],  # Postgres text cannot hold U+0000
                   size if size is not None else len(data or b""),
                   hashlib.sha256(data).digest() if data is not None else None,
                   data[:PREFIX_BYTES] if data is not None else None)


@dataclass(slots=True)
class SeqCheck:
    """The guard's state while one batch is judged; `SeqGuard.commit` keeps it once the batch is durable."""

    last: int | None
    fresh: bool
    requested: int | None
    pending: int | None = None
    pending_kind: str | None = None
    moved: bool = False  # the cursor should be written (to `last`)
    inclusive: bool | None = None  # the host replays the frame at our cursor (seen on the first frame)
    anomalies: list[tuple[str, int]] = field(default_factory=list)

    def admit(self, seq: int, max_jump: int | None) -> Verdict:
        fresh, self.fresh = self.fresh, False
        last = self.last
        if fresh and self.requested is not None and seq >= self.requested:
            self.inclusive = seq == self.requested
        if last is None:
            return self._accept(seq)
        if seq > last:
            if max_jump is None or seq - last <= max_jump:
                return self._accept(seq)
            if self.pending is not None and self.pending < seq <= self.pending + max_jump:
                self.anomalies.append(("jump", seq))  # confirmed: the host's seq really moved on
                return self._accept(seq)
            self.pending, self.pending_kind = seq, "jump"
            self.anomalies.append(("outlier", seq))
            return Verdict.PENDING
        if fresh and self.requested is not None and seq < self.requested:
            self.pending, self.pending_kind = seq, "reset"
            return Verdict.PENDING
        if self.pending_kind == "reset" and self.pending is not None and self.pending < seq and (
                max_jump is None or seq - self.pending <= max_jump):
            self.anomalies.append(("reset", seq))
            return self._accept(seq)
        self.anomalies.append(("duplicate", seq))
        return Verdict.DUPLICATE

    def _accept(self, seq: int) -> Verdict:
        self.last, self.pending, self.pending_kind, self.moved = seq, None, None, True
        return Verdict.ACCEPT

    @property
    def cursor(self) -> int | None:
        """The cursor to commit with the batch, or None to leave it unchanged."""
        return self.last if self.moved else None


class SeqGuard:
    """One per source, shared by the source (which says when it (re)connects and from which cursor) and
    its pipeline (which judges every frame's seq). Also carries rejects found below the pipeline (a
    message too big for the socket), for the pipeline to record durably with its next batch."""

    def __init__(self, source: str, cursor: int | None, *, max_jump: int | None = MAX_SEQ_JUMP) -> None:
        self.source = source
        self.max_jump = max_jump
        self.state = SeqCheck(last=cursor, fresh=True, requested=cursor)
        self.rejects: list[tuple[Reject, int | None]] = []  # (reject, cursor to commit with it)

    def connected(self, cursor: int | None) -> None:
        """A new connection asked for frames after `cursor` (None: the live tip)."""
        self.state = SeqCheck(last=cursor, fresh=True, requested=cursor, inclusive=self.state.inclusive)

    @property
    def inclusive(self) -> bool:
        """Whether the host was seen replaying the frame at our cursor after a reconnect."""
        return bool(self.state.inclusive)

    def begin(self) -> SeqCheck:
        return replace(self.state, moved=False, anomalies=[])

    def commit(self, check: SeqCheck) -> None:
        for kind, seq in check.anomalies:
            metrics.SEQ_ANOMALIES.labels(self.source, kind).inc()
            if kind == "reset":
                log.error("source.seq_reset", source=self.source, seq=seq, old_cursor=self.state.last,
                          rule="the host's seq space restarted: the cursor follows it down")
            elif kind == "jump":
                log.warning("source.seq_jump", source=self.source, seq=seq, old_cursor=self.state.last)
            elif kind == "outlier":
                log.warning("source.seq_outlier", source=self.source, seq=seq, cursor=self.state.last)
        check.anomalies = []
        self.state = check

    def set_aside(self, reject: Reject, cursor: int | None) -> None:
        """Queue a socket-level reject; `cursor`: where the source now resumes (committed with it)."""
        self.rejects.append((reject, cursor))
