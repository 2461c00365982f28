"""Stage ③: accept or reject each record with a reason; nothing is dropped silently.

Lexicon rules come from `core.lexicon`; this module adds what a lexicon cannot say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.lexicon import LEXICON_DIR, PLYR_COLLECTIONS, LexiconSet, LexiconsMissing

LEXICON_ROOT: Path = LEXICON_DIR


NUL = "string contains U+0000"
TOO_DEEP = "record nested too deeply"
# Reasons whose record body cannot be stored (Postgres jsonb refuses U+0000, the JSON encoder refuses
# nesting past 255 levels): the pipeline logs such records without their body.
UNSTORABLE = frozenset({NUL, TOO_DEEP})
_MAX_DEPTH = 128  # the lexicon's own limit: anything deeper is invalid anyway


def _unstorable(record: Any) -> str | None:
    """NUL or TOO_DEEP if `record` cannot be logged faithfully. Iterative: records from the network
    may nest deeper than Python's recursion limit."""
    stack: list[tuple[Any, int]] = [(record, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return NUL
        elif isinstance(value, dict | list):
            if depth > _MAX_DEPTH:
                return TOO_DEEP
            if isinstance(value, dict):
                if any("\x00" in k for k in value if isinstance(k, str)):
                    return NUL
                value = value.values()
            stack.extend((v, depth + 1) for v in value)
    return None


def load_record_lexicons(root: Path = LEXICON_ROOT) -> LexiconSet:
    """The record lexicons under `root`; LexiconsMissing (naming the path) unless every plyr.fm record
    lexicon is there: without them every record would be rejected, silently, as an unknown collection."""
    lexicons = LexiconSet.load(root)
    if missing := sorted(PLYR_COLLECTIONS - lexicons.collections):
        raise LexiconsMissing(f"lexicon folder {root} lacks the record lexicons {', '.join(missing)}")
    return lexicons


class RecordValidator:
    def __init__(self, lexicons: LexiconSet | None = None) -> None:
        self.lexicons = lexicons or load_record_lexicons()

    def check(self, collection: str, rkey: str, record: Any) -> str | None:
        """None when the record may be projected, else why not."""
        # First: the pipeline drops the body for these reasons, so a record with U+0000 *and* another
        # fault must still get this one (else its body reaches jsonb and the whole batch fails).
        if (unstorable := _unstorable(record)) is not None:
            return unstorable
        reason = self.lexicons.validate_record(collection, rkey, record)
        if reason is not None:
            return reason
        if collection.endswith(".track") and not (record.get("audioUrl") or record.get("audioBlob")):
            return "track has neither audioUrl nor audioBlob"
        return None
