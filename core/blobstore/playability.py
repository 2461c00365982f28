"""Playability of a track: one definition, in Python (for /audio) and SQL (for views and metrics).

- `mirrored`: our verified copy of the audio blob exists (not for support-gated tracks);
- `pds_only`: the record has an audioBlob and the artist's PDS is known and hasn't said it's gone;
- `url_only`: an https `audioUrl` on the allow-list that the checker hasn't found dead;
- `dead`: every source is gone.
Support-gated tracks are never served from our copies, so they are `url_only` or `dead`.
"""

from __future__ import annotations

from typing import Final, Literal
from urllib.parse import urlsplit

Playability = Literal["mirrored", "pds_only", "url_only", "dead"]
STATES: Final = ("mirrored", "pds_only", "url_only", "dead")


def allowed_audio_url(url: str | None, hosts: tuple[str, ...]) -> bool:
    """An https URL without credentials whose host is on the list (".x.y" entries match subdomains)."""
    if not url or not url.startswith("https://"):
        return False
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises on a garbage port
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or not host:
        return False
    return any(host == h or (h.startswith(".") and host.endswith(h)) for h in hosts)


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


# Needs `t` = track, `b` = blob (LEFT JOIN on cid), `a` = actor, `u` = audio_url_check (LEFT JOINs),
# and the parameter %(audio_hosts)s = host_patterns(...).
URL_HOST_OK: Final = (
    "(lower(substring(t.audio_url from '^https://([^/?#:@\\\\]+)(?::[0-9]+)?(?:[/?#]|$)'))"
    " LIKE ANY(%(audio_hosts)s::text[]))"
)
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
