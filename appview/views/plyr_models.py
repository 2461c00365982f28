"""plyr.fm's REST response models, field for field and in declaration order (plyr-api-samples.md).

Optional fields are always present (as null), as plyr.fm serialises them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from appview.views.urls import SafeUrl, SafeUrlList


class FeaturedArtist(BaseModel):
    did: str
    handle: str
    display_name: str
    avatar_url: SafeUrl


class AlbumSummary(BaseModel):
    id: str
    slug: str
    title: str
    image_url: SafeUrl
    thumbnail_url: SafeUrl


class TrackResponse(BaseModel):
    id: int
    title: str
    artist: str
    artist_handle: str
    artist_did: str
    artist_avatar_url: SafeUrl
    file_id: str
    file_type: str
    features: list[FeaturedArtist]
    r2_url: SafeUrl
    atproto_record_uri: str | None
    atproto_record_cid: str | None
    atproto_record_url: str | None
    play_count: int
    created_at: str
    image_url: SafeUrl
    thumbnail_url: SafeUrl
    is_liked: bool
    like_count: int
    comment_count: int
    album: AlbumSummary | None
    tags: list[str]
    copyright_flagged: bool | None
    copyright_match: str | None
    support_gate: dict[str, Any] | None
    gated: bool
    downloadable: bool
    download_policy: str
    artist_support_url: SafeUrl
    copyright_song_uri: str | None
    copyright_recording_uri: str | None
    original_file_id: str | None
    original_file_type: str | None
    description: str | None
    audio_storage: str
    pds_blob_cid: str | None
    is_optimizing: bool
    visibility: str
    unlisted: bool
    self_labels: list[str]
    operator_labels: list[str]
    labels: list[str]


class TracksListResponse(BaseModel):
    tracks: list[TrackResponse]
    next_cursor: str | None
    has_more: bool


class TracksResponse(BaseModel):
    tracks: list[TrackResponse]


class ArtistResponse(BaseModel):
    did: str
    handle: str
    display_name: str
    bio: str | None
    avatar_url: SafeUrl
    created_at: str
    updated_at: str
    show_liked_on_profile: bool
    support_url: SafeUrl


class TopItem(BaseModel):
    id: int
    title: str
    play_count: int


class AnalyticsResponse(BaseModel):
    total_plays: int
    total_items: int
    total_duration_seconds: int
    top_item: TopItem | None
    top_liked: TopItem | None
    rank: int | None


class AlbumMetadata(BaseModel):
    id: str
    title: str
    slug: str
    description: str | None
    artist: str
    artist_handle: str
    artist_did: str
    track_count: int
    total_plays: int
    image_url: SafeUrl
    list_uri: str | None


class AlbumResponse(BaseModel):
    metadata: AlbumMetadata
    tracks: list[TrackResponse]


class ArtistAlbum(BaseModel):
    id: str
    title: str
    slug: str
    track_count: int
    total_plays: int
    image_url: SafeUrl


class ArtistAlbumsResponse(BaseModel):
    albums: list[ArtistAlbum]


class AlbumListItem(BaseModel):
    id: str
    title: str
    slug: str
    artist: str
    artist_handle: str
    track_count: int


class AlbumsResponse(BaseModel):
    albums: list[AlbumListItem]


class PlaylistResponse(BaseModel):
    id: str
    name: str
    owner_did: str
    owner_handle: str
    track_count: int
    image_url: SafeUrl
    show_on_profile: bool
    atproto_record_uri: str | None
    is_private: bool
    created_at: str
    preview_thumbnails: SafeUrlList


class PlaylistWithTracksResponse(PlaylistResponse):
    tracks: list[TrackResponse]


class CommentResponse(BaseModel):
    id: int
    user_did: str
    user_handle: str
    user_display_name: str | None
    user_avatar_url: SafeUrl
    text: str
    timestamp_ms: int
    created_at: str
    updated_at: str | None


class CommentsListResponse(BaseModel):
    comments: list[CommentResponse]
    count: int
    comments_enabled: bool


class Liker(BaseModel):
    did: str
    handle: str
    display_name: str
    avatar_url: SafeUrl
    liked_at: str


class TrackLikersResponse(BaseModel):
    users: list[Liker]
    count: int


class UserSummary(BaseModel):
    did: str
    handle: str
    display_name: str
    avatar_url: SafeUrl


class UserLikesResponse(BaseModel):
    user: UserSummary
    tracks: list[TrackResponse]
    count: int


class PlatformStats(BaseModel):
    total_plays: int
    total_tracks: int
    total_artists: int
    total_duration_seconds: int


class ActivityTrack(BaseModel):
    id: int
    title: str
    artist_handle: str
    image_url: SafeUrl
    thumbnail_url: SafeUrl
    artist_avatar_url: SafeUrl


class ActivityCollection(BaseModel):
    type: Literal["playlist", "album"]
    id: str
    name: str
    image_url: SafeUrl
    owner_handle: str
    slug: str | None


class ActivityEvent(BaseModel):
    type: str
    actor: UserSummary
    track: ActivityTrack | None
    comment_text: str | None
    collection: ActivityCollection | None
    created_at: str


class ActivityResponse(BaseModel):
    events: list[ActivityEvent]
    next_cursor: str | None
    has_more: bool


class HistogramBucket(BaseModel):
    date: str
    count: int


class HistogramResponse(BaseModel):
    buckets: list[HistogramBucket]


class OEmbedResponse(BaseModel):
    version: str
    type: str
    provider_name: str
    provider_url: str
    title: str
    author_name: str
    author_url: str
    width: int
    height: int
    html: str
    thumbnail_url: SafeUrl
    thumbnail_width: int | None
    thumbnail_height: int | None
