"""Request count and latency for every HTTP route (REST, XRPC, `/audio`, the pages), labelled by route template.

Pure ASGI and outermost, so cached answers are counted too. The label is the route's template (`/tracks/{track_id}`),
never the raw path, so a scanner cannot blow up the metric's cardinality; a request no route matches is `<unmatched>`.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("appview_http_requests_total", "HTTP responses by route template, method and status",
                   ["route", "method", "status"])
LATENCY = Histogram("appview_http_request_seconds", "HTTP request latency (until the response starts) by route",
                    ["route", "method"],
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
UNMATCHED = "<unmatched>"


class HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        timed = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, timed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                LATENCY.labels(route_of(scope), scope["method"]).observe(time.perf_counter() - start)
                timed = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_of(scope)
            if not timed:
                LATENCY.labels(route, scope["method"]).observe(time.perf_counter() - start)
            REQUESTS.labels(route, scope["method"], str(status)).inc()


def route_of(scope: Scope) -> str:
    """The template of the route that served `scope` (set by the router, or by the cache on a hit)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED
