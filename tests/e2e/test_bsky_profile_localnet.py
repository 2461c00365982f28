"""A Bluesky profile (`app.bsky.actor.profile/self`) with an uploaded avatar, written to the real reference PDS
for an artist with a track: learnt by the resync when the account is first seen, followed live afterwards, and
gone back to the fallback when deleted — on the artist page, the track page and the XRPC profile."""

from __future__ import annotations

import struct
import zlib
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.appview.test_xrpc import LEXICONS
from tests.e2e.conftest import Query, RunningIngester, eventually
from tests.e2e.test_read_localnet import api, handle, track, until  # noqa: F401  (api: fixture)
from tests.localnet.peer import Localnet, Xrpc

PROFILE = "app.bsky.actor.profile"


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny, grey) PNG: the PDS sniffs an uploaded blob's type from its bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def test_bluesky_profile_follows_the_pds(xrpc: Xrpc, localnet: Localnet, ingester: RunningIngester,
                                               api: httpx.AsyncClient, q: Query) -> None:  # noqa: F811
    ann = await xrpc.create_account(handle("ann"))
    blob = await xrpc.upload_blob(ann, png(), "image/png")
    avatar_cid = blob["ref"]["$link"]
    # Written while the account is not tracked yet (no fm.plyr history): live, this commit is skipped; the
    # resync that enrols the account on its first track reads the profile from the repo's MST.
    await xrpc.put(ann, PROFILE, "self", {"$type": PROFILE, "displayName": "Ann on Bluesky",
                                          "description": "field recordings", "avatar": blob})
    await xrpc.create(ann, "fm.plyr.track", track("Morning", 1))
    blob_at_pds = (f"{localnet.pds_url.rstrip('/')}/xrpc/com.atproto.sync.getBlob?"
                   + urlencode({"did": ann.did, "cid": avatar_cid}))
    # The local PDS speaks plain http, and we serve only https URLs: its avatars are not shown (the rule for an
    # https PDS, the getBlob URL of the blob, is tested in tests/appview/test_bsky_profiles_read.py).
    expected_avatar = None

    async def artist() -> dict[str, Any]:
        r = await api.get(f"/artists/{ann.did}")
        return r.json() if r.status_code == 200 else {}

    a = await until(artist, lambda a: a.get("display_name") == "Ann on Bluesky")
    assert a["avatar_url"] == expected_avatar and a["bio"] == "field recordings"
    assert await q("SELECT source, action FROM record_event WHERE did = %s AND collection = %s", ann.did,
                   PROFILE) == [("backfill", "create")]  # learnt from the getRepo snapshot
    async with httpx.AsyncClient() as http:  # the blob the profile names is the very image
        got = await http.get(blob_at_pds)
        assert got.status_code == 200 and got.content == png()

    feed = (await api.get("/tracks/", params={"artist_did": ann.did})).json()["tracks"]
    one = (await api.get(f"/tracks/{feed[0]['id']}")).json()
    assert (one["artist"], one["artist_avatar_url"]) == ("Ann on Bluesky", expected_avatar)
    r = await api.get("/xrpc/fm.plyr.actor.getProfile", params={"actor": ann.did})
    body = r.json()
    assert LEXICONS.validate_output("fm.plyr.actor.getProfile", body) is None
    assert (body["displayName"], body.get("avatar"), body["description"]) == (
        "Ann on Bluesky", expected_avatar, "field recordings")

    # tracked now: an update arrives live (firehose, MST-proven, validated) — and an invalid one is refused
    await xrpc.put(ann, PROFILE, "self", {"$type": PROFILE, "displayName": "Ann, renamed", "avatar": blob})
    await until(artist, lambda a: a.get("display_name") == "Ann, renamed")
    bad = {"$type": PROFILE, "displayName": "x" * 100, "avatar": blob}  # over 64 graphemes; the PDS skips checks
    await xrpc.call("com.atproto.repo.putRecord", {"repo": ann.did, "collection": PROFILE, "rkey": "self",
                                                   "record": bad, "validate": False}, ann)
    await eventually(q, "SELECT rejected FROM record_event WHERE did = %s AND collection = %s ORDER BY seq DESC"
                        " LIMIT 1", [("displayName: string longer than maxGraphemes 64 graphemes",)], ann.did, PROFILE)
    assert (await artist())["display_name"] == "Ann, renamed"

    await xrpc.delete(ann, PROFILE, "self")
    a = await until(artist, lambda a: a.get("display_name") == "Ann Artist")  # the track's artist string
    assert a["avatar_url"] is None and a["bio"] is None
    one = (await api.get(f"/tracks/{feed[0]['id']}")).json()
    assert (one["artist"], one["artist_avatar_url"]) == ("Ann Artist", None)
