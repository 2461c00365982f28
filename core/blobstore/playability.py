"""Playability of a track: one definition, in Python (for /audio) and SQL (for views and metrics).

- `mirrored`: our verified copy of the audio blob exists (not for support-gated tracks);
- `pds_only`: the record has an audioBlob and the artist's PDS is known and hasn't said it's gone;
- `url_only`: an https `audioUrl` on the allow-list that the checker hasn't found dead;
- `dead`: every source is gone.
Support-gated tracks are never served from our copies, so they are `url_only` or `dead`.
"""

from __future__ import annotations

import re
from typing import Final, Literal

Playability = Literal["mirrored", "pds_only", "url_only", "dead"]
STATES: Final = ("mirrored", "pds_only", "url_only", "dead")

# The URL rule, written once per language: printable ASCII only; https; a host without `/?#:@\`; an optional
# port of up to five digits; then nothing, or a path, query or fragment.
_HOST = r"[^/?#:@\\]+"
_URL_RE = rf"^https://({_HOST})(?::([0-9]{{1,5}}))?(?:[/?#].*)?$"
_URL: Final = re.compile(_URL_RE, re.ASCII | re.DOTALL)
_PRINTABLE: Final = re.compile(r"[!-~]*")


def audio_host(url: str | None) -> str | None:
    """The host of an https URL of printable ASCII without credentials and with a valid port, lower case; else
    None. The same rule as `AUDIO_HOST_SQL`, step for step (tests/core/test_blobstore.py holds them equal on
    hostile URLs), so a view's playability and `/audio`'s answer never disagree. Stricter than `urlsplit`,
    which drops tabs and newlines and accepts an empty port."""
    if not url or not _PRINTABLE.fullmatch(url):
        return None
    m = _URL.fullmatch(url)
    if m is None or (m[2] is not None and int(m[2]) > 65535):
        return None
    return m[1].lower()


def allowed_audio_url(url: str | None, hosts: tuple[str, ...]) -> bool:
    """An https URL (see `audio_host`) whose host is on the list (".x.y" entries match subdomains)."""
    host = audio_host(url)
    return host is not None and any(host == h or (h.startswith(".") and host.endswith(h)) for h in hosts)


def pds_source_dead(blob_state: str | None, blob_reason: str | None) -> bool:
    """The PDS said the blob is gone, or served bytes that don't match its CID."""
    return blob_state == "gone" or (blob_reason or "").startswith("cid_mismatch")


def classify(*, gated: bool, blob_cid: str | None, blob_state: str | None, blob_reason: str | None,
             pds: str | None, url: str | None, url_dead: bool, hosts: tuple[str, ...]) -> Playability:
    url_ok = allowed_audio_url(url, hosts) and not url_dead
    if gated:
        return "url_only" if url_ok else "dead"
    if blob_state == "mirrored":
        return "mirrored"
    if blob_cid and pds and not pds_source_dead(blob_state, blob_reason):
        return "pds_only"
    return "url_only" if url_ok else "dead"


def host_patterns(hosts: tuple[str, ...]) -> list[str]:
    """LIKE patterns equivalent to `allowed_audio_url`'s host rule."""
    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

    return ["%" + esc(h) if h.startswith(".") else esc(h) for h in hosts]


# `audio_host` in SQL: `track.audio_host`, a stored generated column (migration 0019, core/db/audio_host.py),
# so a feed page does not run these regexes per row on every read (~8 µs a row here: 12 % of its statement).
AUDIO_HOST_SQL: Final = (
    f"CASE WHEN audio_url ~ '{_URL_RE}' AND audio_url !~ '[^!-~]'"
    f" AND coalesce(substring(audio_url from '^https://{_HOST}:([0-9]{{1,5}})')::int, 0) <= 65535"
    f" THEN lower(substring(audio_url from '^https://({_HOST})')) END"
)
# Needs `t` = track, `b` = blob (LEFT JOIN on cid), `a` = actor, `u` = audio_url_check (LEFT JOINs),
# and the parameter %(audio_hosts)s = host_patterns(...).
URL_HOST_OK: Final = "(t.audio_host LIKE ANY(%(audio_hosts)s::text[]))"
_URL_OK = f"({URL_HOST_OK} AND u.ok IS DISTINCT FROM false)"
PLAYABILITY_SQL: Final = f"""CASE
  WHEN t.support_gate IS NOT NULL THEN CASE WHEN {_URL_OK} THEN 'url_only' ELSE 'dead' END
  WHEN b.state = 'mirrored' THEN 'mirrored'
  WHEN t.audio_blob_cid IS NOT NULL AND a.pds IS NOT NULL AND b.state IS DISTINCT FROM 'gone'
       AND coalesce(b.reason, '') NOT LIKE 'cid\\_mismatch%%' THEN 'pds_only'
  WHEN {_URL_OK} THEN 'url_only'
  ELSE 'dead'
END"""
PLAYABILITY_JOINS: Final = """
LEFT JOIN blob b ON b.cid = t.audio_blob_cid
LEFT JOIN actor a ON a.did = t.did
LEFT JOIN audio_url_check u ON u.url = t.audio_url"""
