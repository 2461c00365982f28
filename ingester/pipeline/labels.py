"""Label frames → validated, signature-checked log rows → one append per frame (with the cursor).

Each label is judged alone: a malformed or forged label is logged with its reason and never
projected, while the other labels of the same frame go through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import structlog

from core.events import ErrorFrame, InfoFrame, LabelEvent
from core.labels import digest, to_json
from ingester.decode.labels import LabelFrameError, LabelsFrame, decode_label_frame
from ingester.eventlog.labels import append_labels
from ingester.metrics import LABELS
from ingester.validate.labels import check_label
from ingester.verify.labels import LabelVerifier

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LabelOutcome:
    last_seq: int | None = None  # the labeler seq now committed, when this frame carried one
    error: str | None = None  # an error frame's name (FutureCursor, …)
    appended: int = 0


def _text(label: Any, key: str) -> str | None:
    value = label.get(key) if isinstance(label, dict) else None
    return value if isinstance(value, str) and "\x00" not in value else None


class LabelIngest:
    def __init__(self, conn: psycopg.AsyncConnection, *, source: str, verifier: LabelVerifier) -> None:
        self.conn = conn
        self.source = source
        self.verifier = verifier

    async def handle(self, frame: bytes) -> LabelOutcome:
        try:
            decoded = decode_label_frame(frame)
        except LabelFrameError as e:
            LABELS.labels(self.source, "bad_frame").inc()
            log.warning("labels.bad_frame", source=self.source, error=str(e))
            return LabelOutcome()
        if isinstance(decoded, ErrorFrame):
            log.warning("labels.error_frame", source=self.source, error=decoded.error, message=decoded.message)
            return LabelOutcome(error=decoded.error)
        if isinstance(decoded, InfoFrame):
            # OutdatedCursor: the labeler no longer has history that old and replays from what it has.
            log.info("labels.info", source=self.source, name=decoded.name, message=decoded.message)
            return LabelOutcome()
        if not isinstance(decoded, LabelsFrame):
            return LabelOutcome()
        events = [await self.event(label, decoded.seq) for label in decoded.labels]
        result = await append_labels(self.conn, events, cursor=(self.source, decoded.seq))
        return LabelOutcome(last_seq=decoded.seq, appended=result.appended)

    async def event(self, label: Any, seq: int | None) -> LabelEvent:
        """One log row for `label`: rejected with a reason, unverified, or verified."""
        reason = check_label(label)
        verified = False
        if reason is None:
            verdict = await self.verifier.verify(label)
            verified, reason = verdict.verified, verdict.rejected
            if verdict.unresolvable is not None:
                LABELS.labels(self.source, "unresolvable").inc()
                log.warning("labels.unresolvable", source=self.source, src=label["src"],
                            reason=verdict.unresolvable)
        body: dict[str, Any] | None = None
        if isinstance(label, dict) and reason != "string contains U+0000":
            body = to_json(label)
        if reason is not None:
            LABELS.labels(self.source, "rejected").inc()
            log.warning("labels.rejected", source=self.source, src=_text(label, "src"),
                        uri=_text(label, "uri"), val=_text(label, "val"), reason=reason)
        elif verified:
            LABELS.labels(self.source, "verified").inc()
        return LabelEvent(
            src=_text(label, "src"), uri=_text(label, "uri"), val=_text(label, "val"), label=body,
            digest=digest(label) if isinstance(label, dict) else digest({"value": repr(label)}),
            source=self.source, source_seq=seq, verified=verified, rejected=reason,
        )
