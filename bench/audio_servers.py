"""One /audio server for bench/mirror.py, run as a subprocess so that it doesn't share a core with the load.

  ours   the app's `GET /audio/{file_id}` (DB lookup, fallback decision, our Range responses)
  plain  Starlette's FileResponse on the same files, no database: the floor of serving a file in Python
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import FileResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from appview.app import create_app  # noqa: E402
from appview.settings import AppviewSettings  # noqa: E402
from core.blobstore import LocalStore  # noqa: E402


def plain_app(blob_dir: Path) -> Starlette:
    store = LocalStore(blob_dir)

    async def serve(request: Request) -> Response:
        return FileResponse(store.path_for(request.path_params["cid"]), media_type="audio/wav")

    return Starlette(routes=[Route("/file/{cid}", serve)])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["ours", "plain"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--data-dir", type=Path, required=True)
    a = p.parse_args()
    if a.kind == "ours":
        app = create_app(AppviewSettings(database_url=a.db, APPVIEW_DATA_DIR=a.data_dir), a.db)
    else:
        app = plain_app(a.data_dir / "blobs")
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
