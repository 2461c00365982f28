"""plyr.fm REST: tags. Tags live in plyr.fm's own database, not in any record on the network, so an AppView
built from the network knows none: the list is empty and every tag is not found, as plyr.fm answers for a
tag it does not have. Routed before `/tracks/{track_id}`, which would otherwise take `/tracks/tags`."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import BaseModel

from appview.errors import NotFound

router = APIRouter(tags=["tracks"])


class TagWithCount(BaseModel):
    """plyr.fm's `TagWithCount` (backend/api/tracks/tags.py)."""

    name: str
    track_count: int
    total_plays: int


@router.get("/tracks/tags")
async def list_tags(q: str | None = Query(None, max_length=200),
                    limit: int = Query(20, ge=1, le=100)) -> list[TagWithCount]:
    return []


# `:path` as on plyr.fm: a tag may contain a slash ("funk / soul").
@router.get("/tracks/tags/{tag_name:path}")
async def tracks_by_tag(tag_name: str) -> None:
    raise NotFound(f"tag '{tag_name.strip().lower()[:100]}' not found")
