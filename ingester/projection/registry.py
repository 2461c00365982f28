"""PROJECTORS: the explicit dispatch table from collection NSID to its projector."""

from __future__ import annotations

from ingester.projection.base import CollectionProjector
from ingester.projection.comments import CommentProjector
from ingester.projection.likes import LikeProjector
from ingester.projection.lists import ListProjector
from ingester.projection.profiles import ProfileProjector
from ingester.projection.tracks import TrackProjector

PROJECTORS: dict[str, CollectionProjector] = {
    p.collection: p
    for p in (TrackProjector(), LikeProjector(), CommentProjector(), ListProjector(), ProfileProjector())
}
