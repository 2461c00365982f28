"""Test lexicons (tests/appview/lexicons: fm.plyr.test.*) beside the repo's own, and sample views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.lexicon import LEXICON_DIR, LexiconSet
from core.lexicon_methods import load_queries

TEST_LEXICONS = Path(__file__).resolve().parent / "lexicons"
LEX = LexiconSet.load(LEXICON_DIR, TEST_LEXICONS)
QUERIES = load_queries(LEX)
ART = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
URI = f"at://{ART}/fm.plyr.track/3kaaaaaaaaa22"
CID = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"


def track_view(**over: Any) -> dict[str, Any]:
    return {"uri": URI, "cid": CID, "author": {"did": ART, "handle": "artist.test"}, "title": "first light",
            "indexedAt": "2026-11-01T10:00:00.000Z", "likeCount": 2} | over
