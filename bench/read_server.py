"""The real app under uvicorn (one worker), plus the benchmark's baseline route: the same feed page
built the N+1 way, hydrating each track with its own queries."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvicorn  # noqa: E402
from fastapi import APIRouter  # noqa: E402

from appview.app import create_app  # noqa: E402
from appview.deps import Conn  # noqa: E402
from appview.query import tracks as track_q  # noqa: E402
from appview.settings import AppviewSettings  # noqa: E402
from appview.views import plyr_pages  # noqa: E402
from appview.views.plyr_models import TracksListResponse  # noqa: E402
from core.process import tune_gc  # noqa: E402

baseline = APIRouter()


@baseline.get("/bench/per-track-feed")
async def per_track_feed(conn: Conn, limit: int = 50, cursor: str | None = None) -> TracksListResponse:
    page = await track_q.latest(conn, None, cursor, limit)
    items = [t for i in page.ids for t in await plyr_pages.tracks(conn, [i], None, with_record_url=True)]
    return TracksListResponse(tracks=items, next_cursor=page.cursor, has_more=page.cursor is not None)


def main() -> None:
    url, port, cache = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "cache"
    app = create_app(AppviewSettings(db_pool_max=16, response_cache=cache), url)
    app.include_router(baseline)
    tune_gc()  # as `appview serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


if __name__ == "__main__":
    main()
