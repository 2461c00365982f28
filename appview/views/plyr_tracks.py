"""Hydrated tracks → plyr.fm's `TrackResponse`.

Fields the network cannot tell us get honest defaults, never invented values: `tags` [] (plyr.fm
keeps tags in its own database), `unlisted` false and `visibility` public/supporters (unlisted and
private tracks never reach the public repo as such), `copyright_*` null (plyr.fm's private scans),
`original_file_*` null, `is_optimizing` false, `artist_support_url` null, `downloadable` false (we
serve no downloads), `download_policy` "open" (plyr.fm's default without a support link),
`operator_labels` [] (owner-only on plyr.fm). `play_count` counts teal.fm plays we index.
"""

from __future__ import annotations

from typing import Any

from appview.hydration.tracks import TrackData
from appview.playback.ids import file_id as playback_file_id
from appview.views.formats import iso, record_url, slugify, thumbnail
from appview.views.plyr_models import AlbumSummary, TrackResponse
from appview.views.urls import safe_url

TRACK_NSID = "fm.plyr.track"


def file_id(t: TrackData) -> str:
    """The id /audio/{file_id} accepts (appview/playback/ids.py documents the scheme)."""
    return playback_file_id(t.id, t.audio_blob_cid, t.audio_url)


def audio_storage(t: TrackData) -> str:
    if t.audio_blob_cid and t.audio_url:
        return "both"
    return "pds" if t.audio_blob_cid else "r2"


def album_summary(t: TrackData) -> AlbumSummary | None:
    if t.album is None:
        return None
    image = t.album.image_url or t.image_url
    return AlbumSummary(id=str(t.album.id), slug=t.album.slug or slugify(t.album.name), title=t.album.name,
                        image_url=image,
                        thumbnail_url=thumbnail(image))


def track_dict(t: TrackData, viewer: str | None, *, with_record_url: bool = False) -> dict[str, Any]:
    """`TrackResponse` as plain data, field for field in its order, URLs through the same gate: what the
    hot feed path serialises straight to bytes (tests check it equals the model's serialisation)."""
    gated = t.support_gate is not None
    image = safe_url(t.image_url)
    album = None
    if t.album is not None:
        cover = t.album.image_url or t.image_url
        album = {"id": str(t.album.id), "slug": t.album.slug or slugify(t.album.name), "title": t.album.name,
                 "image_url": safe_url(cover), "thumbnail_url": safe_url(thumbnail(cover))}
    return {
        "id": t.id, "title": t.title, "artist": t.artist_display_name, "artist_handle": t.handle,
        "artist_did": t.did, "artist_avatar_url": safe_url(t.avatar_url), "file_id": file_id(t),
        "file_type": t.file_type,
        "features": [{"did": f.did, "handle": f.handle, "display_name": f.display_name,
                      "avatar_url": safe_url(f.avatar_url)} for f in t.features],
        "r2_url": None if gated else safe_url(t.audio_url),
        "atproto_record_uri": t.uri, "atproto_record_cid": t.cid,
        "atproto_record_url": record_url(t.pds, t.did, TRACK_NSID, t.rkey) if with_record_url else None,
        "play_count": t.play_count, "created_at": iso(t.created_at), "image_url": image,
        "thumbnail_url": safe_url(thumbnail(t.image_url)), "is_liked": t.is_liked, "like_count": t.like_count,
        "comment_count": t.comment_count, "album": album, "tags": [], "copyright_flagged": None,
        "copyright_match": None, "support_gate": t.support_gate, "gated": gated and viewer != t.did,
        "downloadable": False, "download_policy": "open", "artist_support_url": None, "copyright_song_uri": None,
        "copyright_recording_uri": None, "original_file_id": None, "original_file_type": None,
        "description": t.description, "audio_storage": audio_storage(t), "pds_blob_cid": t.audio_blob_cid,
        "is_optimizing": False, "visibility": "supporters" if gated else "public", "unlisted": False,
        "self_labels": list(t.self_labels), "operator_labels": [], "labels": list(t.labels),
    }


def track_response(t: TrackData, viewer: str | None, *, with_record_url: bool = False) -> TrackResponse:
    return TrackResponse.model_validate(track_dict(t, viewer, with_record_url=with_record_url))
