"""View objects of our XRPC query lexicons (lexicons/fm/plyr/defs.json), camelCase on the wire.
Optional fields are omitted when absent (routes serialise with exclude_none), as XRPC expects."""

from __future__ import annotations

import builtins
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from appview.views.urls import SafeUrl


class View(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class ArtistViewBasic(View):
    did: str
    handle: str
    display_name: str
    avatar: SafeUrl = None


class ArtistView(ArtistViewBasic):
    bio: str | None = None
    description: str | None = None
    track_count: int
    album_count: int
    playlist_count: int
    like_count: int
    comment_count: int
    created_at: str | None = None


class AudioView(View):
    file_id: str
    file_type: str
    blob_cid: str | None = None
    mime_type: str | None = None
    size: int | None = None
    url: SafeUrl = None
    playability: str


class AlbumRef(View):
    uri: str | None = None  # absent: an album derived from its tracks' album name (no list record)
    id: int
    name: str
    slug: str | None = None


class TrackViewerState(View):
    liked: bool


class TrackView(View):
    uri: str
    cid: str
    id: int
    title: str
    artist: ArtistViewBasic
    artist_name: str
    album: AlbumRef | None = None
    duration: int | None = None
    audio: AudioView
    image_url: SafeUrl = None
    description: str | None = None
    features: list[ArtistViewBasic]
    support_gate: dict[str, Any] | None = None
    labels: list[str]
    like_count: int
    comment_count: int
    play_count: int
    created_at: str
    indexed_at: str
    viewer: TrackViewerState | None = None


class ListView(View):
    uri: str | None = None  # absent only for an album derived from its tracks' album name
    cid: str | None = None
    id: int
    name: str
    list_type: str
    author: ArtistViewBasic
    track_count: int
    image_url: SafeUrl = None
    created_at: str
    slug: str | None = None  # albums: the slug of /albums/{handle}/{slug}


class CommentView(View):
    uri: str
    cid: str
    id: int
    author: ArtistViewBasic
    text: str
    timestamp_ms: int
    created_at: str
    updated_at: str | None = None
    indexed_at: str


class TrackPage(View):
    cursor: str | None = None
    tracks: list[TrackView]


class TrackList(View):
    tracks: list[TrackView]


class TrackOne(View):
    track: TrackView


class ListPage(View):
    cursor: str | None = None
    list: ListView
    tracks: builtins.list[TrackView]  # `list` is a field name in this class


class Lists(View):
    lists: list[ListView]


class CommentPage(View):
    cursor: str | None = None
    comments: list[CommentView]


class PlatformStatsView(View):
    tracks: int
    artists: int
    duration_seconds: int
    plays: int


class ArtistStatsView(View):
    actor: ArtistViewBasic
    tracks: int
    duration_seconds: int
    likes: int
    comments: int
    plays: int
    top_liked: TrackView | None = None


class ActivityView(View):
    type: str
    uri: str
    actor: ArtistViewBasic
    track: TrackView | None = None
    list: ListView | None = None
    text: str | None = None
    created_at: str


class ActivityPage(View):
    cursor: str | None = None
    events: list[ActivityView]
