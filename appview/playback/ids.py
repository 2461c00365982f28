"""The `file_id` of a track's audio: what track views expose and `GET|HEAD /audio/{file_id}` accepts.

Scheme, first that applies:
1. the track has an `audioBlob` → its blob CID (`bafkrei…`, CIDv1 raw sha256, 59 chars). Content
   addressed: every track with the same audio has the same id, and any client can check the bytes;
2. its `audioUrl` carries plyr.fm's own id (`https://audio.plyr.fm/audio/<hex>.<ext>`,
   `https://api.plyr.fm/audio/<hex>`) → that hex id, so plyr's frontend and ours agree on the id;
3. otherwise `t<track id>` (the track's stable projection id).
The three forms are disjoint (a CID starts with `b` and has 59 chars, plyr ids are lowercase hex,
`t` + digits), so `parse_file_id` tells them apart without a lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from core.blobstore.cid import is_blob_cid
from core.db.schema import PLYR_FILE_ID_REGEX

_PLYR_IN_URL = re.compile(PLYR_FILE_ID_REGEX)
_PLYR_ID = re.compile(r"[0-9a-f]{8,64}")
_TRACK_ID = re.compile(r"t[1-9][0-9]{0,18}")


def plyr_file_id(audio_url: str | None) -> str | None:
    if not audio_url or not audio_url.startswith("https://"):
        return None
    m = _PLYR_IN_URL.search(audio_url)
    return m.group(1) if m else None


def file_id(track_id: int, audio_blob_cid: str | None, audio_url: str | None) -> str:
    if audio_blob_cid and is_blob_cid(audio_blob_cid):
        return audio_blob_cid
    return plyr_file_id(audio_url) or f"t{track_id}"


@dataclass(frozen=True)
class FileRef:
    kind: Literal["blob", "plyr", "track"]
    value: str  # the CID, the plyr hex id, or the track id in decimal


def parse_file_id(fid: str) -> FileRef | None:
    """Which tracks a file_id names; None for anything malformed (the route answers 404)."""
    if len(fid) > 80:
        return None
    if is_blob_cid(fid):
        return FileRef("blob", fid)
    if _PLYR_ID.fullmatch(fid):
        return FileRef("plyr", fid)
    if _TRACK_ID.fullmatch(fid) and int(fid[1:]) < 2**63:
        return FileRef("track", fid[1:])
    return None
