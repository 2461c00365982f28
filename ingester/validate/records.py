"""Stage ③: accept or reject each record with a reason; nothing is dropped silently.

Lexicon rules come from `core.lexicon`; this module adds what a lexicon cannot say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.lexicon import LexiconSet

LEXICON_ROOT = Path(__file__).resolve().parents[2] / "lexicons"


def _has_nul(value: Any) -> bool:
    # Postgres jsonb cannot store U+0000; such a record could never be logged faithfully.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RecordValidator:
    def __init__(self, lexicons: LexiconSet | None = None) -> None:
        self.lexicons = lexicons or LexiconSet.load(LEXICON_ROOT)

    def check(self, collection: str, rkey: str, record: Any) -> str | None:
        """None when the record may be projected, else why not."""
        reason = self.lexicons.validate_record(collection, rkey, record)
        if reason is not None:
            return reason
        if _has_nul(record):
            return "string contains U+0000"
        if collection.endswith(".track") and not (record.get("audioUrl") or record.get("audioBlob")):
            return "track has neither audioUrl nor audioBlob"
        return None
