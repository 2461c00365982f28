"""PROJECTORS: the explicit dispatch table from collection NSID to its projector.

Order matters for account purges (`purge_did` runs in this order): tracks go before plays, so
plays linked to a purged track are re-judged against the tracks that remain.
"""

from __future__ import annotations

from ingester.projection.base import CollectionProjector, FlushHook
from ingester.projection.bsky_profiles import BskyProfileProjector
from ingester.projection.comments import CommentProjector
from ingester.projection.counters import Counters
from ingester.projection.counts import SubjectCounts
from ingester.projection.likes import LikeProjector
from ingester.projection.linking import PlayLinker
from ingester.projection.lists import ListProjector
from ingester.projection.plays import PlayProjector, StatusProjector
from ingester.projection.profiles import ProfileProjector
from ingester.projection.teal import PLAY_COLLECTIONS, STATUS_COLLECTIONS
from ingester.projection.tracks import TrackProjector

_ALL: tuple[CollectionProjector, ...] = (
    TrackProjector(), LikeProjector(), CommentProjector(), ListProjector(), ProfileProjector(),
    BskyProfileProjector(),
    *(PlayProjector(c) for c in PLAY_COLLECTIONS), *(StatusProjector(c) for c in STATUS_COLLECTIONS),
)
PROJECTORS: dict[str, CollectionProjector] = {p.collection: p for p in _ALL}

# Run around every flush of record events: cross-projection links that must follow both sides.
# `Counters` settles what the others marked, so it runs last.
FLUSH_HOOKS: tuple[FlushHook, ...] = (PlayLinker(), SubjectCounts(), Counters())
