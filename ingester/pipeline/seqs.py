"""A batch's seq discipline, shared by the firehose and Jetstream pipelines (`ingester.sources.envelope`).

Each batch judges its frames' seqs on a copy of the source's guard (`SeqGuard.begin`), and the guard keeps that
judgement only once the batch is durable (`settle`), so a retried batch is judged exactly as the first time.
"""

from __future__ import annotations

from collections.abc import Sequence

from ingester import metrics
from ingester.sources.envelope import Reject, SeqCheck, SeqGuard, Verdict


def admit(guard: SeqGuard, check: SeqCheck, seq: int) -> Verdict:
    """Judge a frame's seq for the batch being built; duplicates are counted here (dropped by the caller)."""
    verdict = check.admit(seq, guard.max_jump)
    if verdict is Verdict.DUPLICATE:
        metrics.DUPLICATE_FRAMES.labels(guard.source).inc()
    return verdict


def replayed(check: SeqCheck, seq: int | None) -> bool:
    """A seq at or below the last accepted one: something we were sent before."""
    return seq is not None and check.last is not None and seq <= check.last


def socket_rejects(guard: SeqGuard, rejects: list[Reject]) -> int | None:
    """Move the rejects found below the pipeline (too-big messages) into this batch's; the cursor the
    source skipped to, if any. They leave the guard only once the batch commits (`settle`)."""
    rejects.extend(r for r, _ in guard.rejects)
    cursors = [c for _, c in guard.rejects if c is not None]
    return max(cursors) if cursors else None


def settle(guard: SeqGuard, check: SeqCheck, rejects: Sequence[Reject], taken: int) -> None:
    """The batch committed: keep the guard's new state, count the rejects."""
    guard.commit(check)
    del guard.rejects[:taken]
    for r in rejects:
        metrics.REJECTS.labels(r.kind).inc()
