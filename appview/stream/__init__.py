"""The outbound stream: our log served to other indexers (live and paged), record history, as-of reads."""

from appview.stream.routes import stream_router
from appview.stream.subscribe import Hydrator, StreamConfig

__all__ = ["Hydrator", "StreamConfig", "stream_router"]
