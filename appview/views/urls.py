"""The one gate for URLs that come from record data before we serve them.

plyr.fm's frontend puts our URL fields straight into `<a href>`, `<img src>` and `<audio src>`, so a
record that says `javascript:…`, `data:…` or `http://169.254.169.254/…` must never reach it. A URL is
passed through only when it is

* `https://` with a public DNS host name (its last label starts with a letter, so browsers cannot read
  it as an IPv4 number such as `2852039166` or `0xa9fea9fe`), or a global IP literal; no credentials,
  no whitespace, control characters or backslashes (browsers strip or reinterpret those), at most
  `MAX_URL_LENGTH` characters; or
* our own relative `/audio/<file_id>` path.

Anything else becomes None, counted in `appview_unsafe_urls_total{reason}` and logged at debug
(a hostile record cannot flood the logs). `SafeUrl` applies the gate inside the response models, so
every URL field of every view passes through it, whoever builds the view.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Annotated
from urllib.parse import urlsplit

import structlog
from prometheus_client import Counter
from pydantic import AfterValidator, BeforeValidator

log = structlog.get_logger(__name__)

UNSAFE = Counter("appview_unsafe_urls_total", "URLs from record data withheld from responses, by reason", ["reason"])
MAX_URL_LENGTH = 2048
_AUDIO_PATH = re.compile(r"/audio/[A-Za-z0-9._~-]{1,256}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TLD = re.compile(r"[a-z][a-z0-9-]*")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_LOCAL_SUFFIXES = ("localhost", "local", "internal", "localdomain", "home.arpa", "onion")


def _host_problem(host: str) -> str | None:
    if not host:
        return "no_host"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return None if ip.is_global else "private_ip"
    if not host.isascii():
        return "bad_host"
    name = host.rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        return "bad_host"
    if not _TLD.fullmatch(labels[-1]):
        return "numeric_host"  # a browser would parse it as an IPv4 address
    if any(name == s or name.endswith("." + s) for s in _LOCAL_SUFFIXES):
        return "local_host"
    return None


def unsafe_reason(url: object) -> str | None:
    """Why `url` may not be served (None: it may)."""
    if not isinstance(url, str):
        return "not_a_string"
    if len(url) > MAX_URL_LENGTH:
        return "too_long"
    return _judged(url)


# A pure function of the string, and pages serve the same URLs over and over: each is judged once
# (bounded: at most 16,384 URLs of at most MAX_URL_LENGTH characters are remembered).
@functools.lru_cache(maxsize=16384)
def _judged(url: str) -> str | None:
    if _FORBIDDEN.search(url):
        return "bad_characters"
    if url.startswith("/"):
        return None if _AUDIO_PATH.fullmatch(url) else "relative"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "malformed"
    if parts.scheme.lower() != "https":
        return "scheme"
    if "@" in parts.netloc:
        return "credentials"
    return _host_problem((parts.hostname or "").lower())


def safe_url(url: object, field: str = "") -> str | None:
    """`url` when it may be served, else None (counted and logged at debug, with the reason)."""
    if url is None or url == "":
        return None
    reason = unsafe_reason(url)
    if reason is None:
        assert isinstance(url, str)
        return url
    UNSAFE.labels(reason).inc()
    log.debug("unsafe_url_withheld", reason=reason, field=field, url=repr(url)[:200])
    return None


def safe_urls(urls: list[str]) -> list[str]:
    return [u for u in urls if safe_url(u) is not None]


# A response-model field holding a URL from record data.
SafeUrl = Annotated[str | None, BeforeValidator(safe_url)]
SafeUrlList = Annotated[list[str], AfterValidator(safe_urls)]
