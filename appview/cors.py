"""CORS for browser clients (plyr.fm's web frontend pointed at us, or any web app reading the API).

plyr.fm's frontend sends `credentials: 'include'` on several reads, and a browser refuses a credentialed
response whose `Access-Control-Allow-Origin` is `*`: so allowed origins are echoed one by one
(`allow_credentials=True`, with `Vary: Origin` so no shared cache mixes two origins' answers).
Everything we serve is a read: preflights allow GET and HEAD only, with the request headers browser
clients send (viewer auth, PDS proxying, labeler choice). The middleware must be the outermost layer,
outside the response cache: a cached response is stored without CORS headers and gets the right ones
for each requester on the way out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

ALLOW_METHODS = ("GET", "HEAD")
ALLOW_HEADERS = ("authorization", "content-type", "accept", "accept-language", "content-language", "range",
                 "atproto-proxy", "atproto-accept-labelers", "x-client")
# What a browser script may read beyond the safelisted response headers: range replies of /audio, the
# cache validators, a 429's pause, and the next page of a paged /users/{handle}/likes.
EXPOSE_HEADERS = ("Content-Range", "Accept-Ranges", "Content-Length", "Content-Disposition", "ETag",
                  "Last-Modified", "Retry-After", "Location", "Next-Cursor", "atproto-content-labelers")
PREFLIGHT_MAX_AGE_S = 600


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    origins: tuple[str, ...]  # exact origins
    regex: str | None  # one alternation of every regex item, matched against the whole Origin

    @property
    def enabled(self) -> bool:
        return bool(self.origins) or self.regex is not None


def parse_origins(setting: str) -> CorsPolicy:
    """`CORS_ORIGINS` → policy. Items starting with `^` are regexes (each must compile), others exact
    origins, compared as the browser sends them (lower-case scheme and host, no trailing slash)."""
    exact: list[str] = []
    patterns: list[str] = []
    for raw in setting.split(","):
        item = raw.strip()
        if not item:
            continue
        if item.startswith("^"):
            try:
                re.compile(item)
            except re.error as e:
                raise ValueError(f"CORS_ORIGINS: bad regex {item!r}: {e}") from e
            patterns.append(f"(?:{item})")
        elif item == "*":
            raise ValueError("CORS_ORIGINS: '*' cannot be used with credentials; list origins or use a regex")
        else:
            if not re.fullmatch(r"https?://[^/\s?#]+", item):
                raise ValueError(f"CORS_ORIGINS: {item!r} is not an origin (scheme://host[:port])")
            exact.append(item.lower())
    return CorsPolicy(tuple(exact), "|".join(patterns) if patterns else None)


def install(app: FastAPI, setting: str) -> CorsPolicy:
    """Add the CORS middleware; call after every other middleware so it wraps them all."""
    policy = parse_origins(setting)
    if policy.enabled:
        app.add_middleware(CORSMiddleware, allow_origins=list(policy.origins),
                           allow_origin_regex=policy.regex, allow_credentials=True,
                           allow_methods=list(ALLOW_METHODS), allow_headers=list(ALLOW_HEADERS),
                           expose_headers=list(EXPOSE_HEADERS), max_age=PREFLIGHT_MAX_AGE_S)
    return policy
