"""plyr.fm REST: the frontend's configuration, its sensitive-image list, and `/auth/me`, answered as a
read-only AppView: we take no uploads and hold no sessions, so those parts of plyr.fm's answers say so."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from appview.auth import AuthError, OptionalViewer
from appview.deps import Conn
from appview.hydration.actors import actors
from appview.query.sensitive_images import sensitive_image_urls

router = APIRouter(tags=["meta"])

# plyr.fm's defaults for what its frontend hides and animates (backend/utilities/tags.py, BufoSettings):
# they are display preferences of the frontend, not data, so the frontend keeps behaving as it does there.
DEFAULT_HIDDEN_TAGS = ["ai", "ai-slop", "suno"]
BUFO_EXCLUDE_PATTERNS = ["^bigbufo_"]
BUFO_INCLUDE_PATTERNS = ["bigbufo_0_0", "bigbufo_2_1"]
# We publish no terms of our own: an epoch date never asks a viewer to re-accept anything.
TERMS_LAST_UPDATED = "1970-01-01T00:00:00"
SENSITIVE_IMAGES_CACHE_CONTROL = "public, s-maxage=300, max-age=60"  # as plyr.fm's


class PublicConfig(BaseModel):
    """plyr.fm's `GET /config` (backend/api/meta.py; the frontend's `ServerConfig`)."""

    max_upload_size_mb: int
    max_image_size_mb: int
    browser_observability: bool
    default_hidden_tags: list[str]
    bufo_exclude_patterns: list[str]
    bufo_include_patterns: list[str]
    contact_email: str
    privacy_email: str
    dmca_email: str
    dmca_registration_number: str
    terms_last_updated: str


@router.get("/config")
async def public_config(request: Request) -> PublicConfig:
    """Uploads go to the artist's own PDS, never to us: both upload limits are 0. No browser telemetry proxy."""
    contact: str = request.app.state.contact_email
    return PublicConfig(max_upload_size_mb=0, max_image_size_mb=0, browser_observability=False,
                        default_hidden_tags=DEFAULT_HIDDEN_TAGS, bufo_exclude_patterns=BUFO_EXCLUDE_PATTERNS,
                        bufo_include_patterns=BUFO_INCLUDE_PATTERNS, contact_email=contact, privacy_email=contact,
                        dmca_email=contact, dmca_registration_number="", terms_last_updated=TERMS_LAST_UPDATED)


class SensitiveImagesResponse(BaseModel):
    """plyr.fm's `SensitiveImagesResponse` (backend/api/moderation.py)."""

    image_ids: list[str]  # plyr-hosted artwork ids (https://…r2.dev/{id}.ext, https://…/images/{id}.ext)
    urls: list[str]  # every sensitive image by full URL


# The frontend's own patterns (frontend/src/lib/moderation.svelte.ts) for plyr-hosted image ids.
_R2_ID = re.compile(r"r2\.dev/([^/.]+)\.")
_CDN_ID = re.compile(r"/images/([^/.]+)\.")


def image_id(url: str) -> str | None:
    m = _R2_ID.search(url) or _CDN_ID.search(url)
    return m.group(1) if m else None


@router.get("/moderation/sensitive-images")
async def sensitive_images(conn: Conn, response: Response) -> SensitiveImagesResponse:
    """Artwork and avatars under an adult label (operator labels we follow, or the track's self-labels)."""
    response.headers["Cache-Control"] = SENSITIVE_IMAGES_CACHE_CONTROL
    urls = await sensitive_image_urls(conn)
    ids = list(dict.fromkeys(i for i in map(image_id, urls) if i))
    return SensitiveImagesResponse(image_ids=ids, urls=urls)


class LinkedAccountResponse(BaseModel):
    did: str
    handle: str
    avatar_url: str | None


class PermissionedSpacesStatus(BaseModel):
    supported: bool
    granted: bool
    reader: bool


class CurrentUserResponse(BaseModel):
    """plyr.fm's `CurrentUserResponse` (backend/api/auth.py)."""

    did: str
    handle: str
    linked_accounts: list[LinkedAccountResponse]
    enabled_flags: list[str]
    permissioned_spaces: PermissionedSpacesStatus


@router.get("/auth/me")
async def current_user(conn: Conn, viewer: OptionalViewer) -> CurrentUserResponse:
    """We hold no login sessions: a browser (cookie) or anonymous request is plyr.fm's 401. A request with a
    verified service-auth token is told who it is, with none of plyr.fm's session extras."""
    if viewer is None:
        raise AuthError("AuthenticationRequired", "not authenticated - login required")
    basic = (await actors(conn, [viewer.did]))[viewer.did]
    return CurrentUserResponse(did=viewer.did, handle=basic.handle, linked_accounts=[], enabled_flags=[],
                               permissioned_spaces=PermissionedSpacesStatus(supported=False, granted=False,
                                                                            reader=False))
