"""Checks for setting values that a type alone cannot say: URLs with allowed schemes, comma lists of
hosts, bucket names. Each raises ValueError with a message that says what is allowed (it becomes
the one-line error naming the environment variable, see `core.settings.load_settings`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from core.syntax import is_did

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$", re.IGNORECASE)
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$")
_REGION = re.compile(r"^[a-z0-9-]{1,64}$")
_MAX_ITEMS = 256
# A comma starts a new URL only where a scheme follows: libpq's multi-host form (`postgresql://h1,h2/db`) stays whole.
_NEXT_DB_URL = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_MAX_READ_URLS = 16


def is_hostname(host: str) -> bool:
    """A DNS name (labels of letters, digits, `-`, `_`) or an IP address."""
    if not host or len(host) > 253:
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    return all(_LABEL.match(label) for label in host.rstrip(".").split("."))


def check_url(value: str, schemes: tuple[str, ...], *, bare_host: bool = False) -> str:
    """`value` as an absolute URL with one of `schemes` and a host (or, with `bare_host`, `host[:port]`)."""
    allowed = "/".join(schemes)
    raw = value.strip()
    if bare_host and "://" not in raw:
        raw = f"{schemes[0]}://{raw}"
    try:
        parts = urlsplit(raw)
        port = parts.port  # raises on a port out of 0..65535 or not a number
    except ValueError as e:
        raise ValueError(f"{value!r} is not a valid URL ({e}); expected {allowed}://host[:port]") from None
    if parts.scheme.lower() not in schemes:
        raise ValueError(f"{value!r} must be a {allowed} URL")
    if not parts.hostname or not is_hostname(parts.hostname):
        raise ValueError(f"{value!r} has no valid host; expected {allowed}://host[:port]")
    if port == 0:
        raise ValueError(f"{value!r}: port must be 1..65535")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{value!r}: credentials in the URL are not allowed here")
    return value.strip()


def split_list(value: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if len(items) > _MAX_ITEMS:
        raise ValueError(f"at most {_MAX_ITEMS} entries")
    return items


def url_list(*schemes: str, bare_host: bool = False) -> Callable[[str], str]:
    def check(value: str) -> str:
        for item in split_list(value):
            check_url(item, schemes, bare_host=bare_host)
        return value
    return check


def one_url(*schemes: str, bare_host: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is None or value == "":
            return value
        return check_url(str(value), schemes, bare_host=bare_host)
    return check


def check_host_patterns(value: str) -> str:
    """Comma-separated host names; a leading `.` matches every subdomain (`.r2.dev`)."""
    for item in split_list(value):
        if not is_hostname(item.removeprefix(".")) or "://" in item or "/" in item:
            raise ValueError(f"{item!r} is not a host name (expected e.g. audio.plyr.fm or .r2.dev)")
    return value


def check_labelers(value: str) -> str:
    for item in split_list(value):
        if item.startswith("did:"):
            if not is_did(item):
                raise ValueError(f"{item!r} is not a valid DID")
        else:
            check_url(item, ("https", "http", "wss", "ws"), bare_host=True)
    return value


def check_did_or_empty(value: str) -> str:
    if value and not is_did(value):
        raise ValueError(f"{value!r} is not a valid DID (e.g. did:web:api.example.com)")
    return value


def check_bind_host(value: str) -> str:
    if not is_hostname(value.strip()):
        raise ValueError(f"{value!r} is not an IP address or host name to bind")
    return value.strip()


def check_bucket(value: str | None) -> str | None:
    if value and not _BUCKET.match(value):
        raise ValueError(f"{value!r} is not a bucket name (3..255 letters, digits, '.', '-', '_')")
    return value


def check_region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError(f"{value!r} is not a region (lower-case letters, digits, '-', e.g. us-east-1 or auto)")
    return value


def check_database_url(value: str | None) -> str | None:
    if value and urlsplit(value).scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError("must be a postgresql://… URL (or unset for the embedded Postgres)")
    return value


def split_database_urls(value: str) -> list[str]:
    return [u.strip() for u in _NEXT_DB_URL.split(value) if u.strip()]


def check_database_urls(value: str) -> str:
    """One or more comma-separated postgresql:// URLs, or empty."""
    urls = split_database_urls(value)
    if len(urls) > _MAX_READ_URLS:
        raise ValueError(f"at most {_MAX_READ_URLS} URLs")
    for i, url in enumerate(urls, 1):
        if urlsplit(url).scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError(f"URL {i} of {len(urls)} is not a postgresql://… URL (comma-separated, or empty)")
    return value


def blank_is_none(value: Any) -> Any:
    """An empty environment variable means "unset" for optional settings."""
    return None if isinstance(value, str) and not value.strip() else value


def not_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


# Types for the settings classes.
Port = Annotated[int, Field(ge=1, le=65535)]
OptionalPort = Annotated[Port | None, BeforeValidator(blank_is_none)]
HttpUrl = Annotated[str, AfterValidator(one_url("https", "http"))]
OptionalHttpUrl = Annotated[str | None, BeforeValidator(blank_is_none), AfterValidator(one_url("https", "http"))]
