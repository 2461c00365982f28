"""The demo's catalogue, written into a PDS the way plyr.fm writes it.

Every write is idempotent (accounts are created or logged into, records are `putRecord`s at TIDs derived from their
`createdAt`, as plyr.fm does), so an interrupted seed is finished by the next `appview demo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cli.demo_media import gradient_png, melody_wav, wav_seconds
from core.syntax import tid_from_micros

A4 = 440.0


def _note(semitones: int) -> float:
    return A4 * 2 ** (semitones / 12)


@dataclass(frozen=True)
class Song:
    title: str
    melody: tuple[int, ...]  # semitones from A4
    album: str | None = None
    features: tuple[str, ...] = ()  # names of other demo artists
    description: str | None = None


@dataclass(frozen=True)
class Artist:
    name: str  # handle prefix
    display_name: str
    bio: str
    colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    songs: tuple[Song, ...]
    album_order: tuple[str, ...] = ()  # when set: an album list record with these titles, in this order


ARTISTS = (
    Artist("nova", "Nova Lights", "Night-drive synth songs from a harbour town.", ((20, 30, 90), (240, 120, 200)),
           (Song("Glass Harbor", (0, 4, 7, 12, 7, 4), "Night Shift", description="Lights on the water."),
            Song("Slow Orbit", (-5, 0, 3, 7, 3, 0), "Night Shift"),
            Song("Paper Moon", (2, 5, 9, 14, 9, 5), "Night Shift")),
           album_order=("Paper Moon", "Glass Harbor", "Slow Orbit")),
    Artist("kilowatt", "Kilowatt Choir", "A choir of oscillators.", ((250, 180, 20), (200, 40, 40)),
           (Song("Static Bloom", (0, 2, 4, 7, 9, 12)),
            Song("Copper Wire", (-3, 0, 4, 0, -3, -8), "Voltage"),  # an album named on tracks, no list record
            Song("Rainmaker", (5, 9, 12, 16, 12, 9), "Voltage", features=("nova",)))),
    Artist("marisol", "Marisol Vega", "Songs for the late bus home.", ((10, 120, 110), (190, 240, 160)),
           (Song("Cerulean", (7, 4, 0, -5, 0, 4)),
            Song("Late Bus Home", (0, -1, -3, -5, -7, -8), description="Take the long way."))),
)
LISTENER = ("sam", "Sam Listens", "I like what I like.")
PASSWORD = "demo-password"  # a local, throwaway PDS on loopback


@dataclass
class Seeded:
    handles: dict[str, str] = field(default_factory=dict)  # name → handle
    dids: dict[str, str] = field(default_factory=dict)
    tracks: dict[str, dict[str, str]] = field(default_factory=dict)  # title → strongRef


class Pds:
    """The few XRPC calls the seed needs."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=30.0)
        self.tokens: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _post(self, nsid: str, body: Any, did: str | None = None, *, content: bytes | None = None,
                    mime: str | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {self.tokens[did]}"} if did else {}
        if content is not None:
            headers["content-type"] = mime or "application/octet-stream"
            r = await self.client.post(f"/xrpc/{nsid}", content=content, headers=headers)
        else:
            r = await self.client.post(f"/xrpc/{nsid}", json=body, headers=headers)
        if r.status_code != 200:
            raise RuntimeError(f"{nsid}: HTTP {r.status_code}: {r.text[:300]}")
        out: dict[str, Any] = r.json()
        return out

    async def account(self, handle: str) -> str:
        """Create the account, or log into it when a previous run created it; returns its DID."""
        try:
            out = await self._post("com.atproto.server.createAccount",
                                   {"handle": handle, "email": f"{handle}@example.com", "password": PASSWORD})
        except RuntimeError as e:
            if "taken" not in str(e).lower() and "already" not in str(e).lower():
                raise
            out = await self._post("com.atproto.server.createSession", {"identifier": handle, "password": PASSWORD})
        did = str(out["did"])
        self.tokens[did] = str(out["accessJwt"])
        return did

    async def blob(self, did: str, data: bytes, mime: str) -> dict[str, Any]:
        out = await self._post("com.atproto.repo.uploadBlob", None, did, content=data, mime=mime)
        blob: dict[str, Any] = out["blob"]
        return blob

    async def put(self, did: str, collection: str, rkey: str, record: dict[str, Any]) -> dict[str, str]:
        out = await self._post("com.atproto.repo.putRecord",
                               {"repo": did, "collection": collection, "rkey": rkey, "record": record}, did)
        return {"uri": str(out["uri"]), "cid": str(out["cid"])}


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _tid(t: datetime) -> str:
    return tid_from_micros(int(t.timestamp() * 1_000_000))


async def seed(pds_url: str, domain: str = ".test", start: datetime | None = None) -> Seeded:
    """Write the whole catalogue; returns handles, DIDs and the tracks' strong refs."""
    t0 = start or datetime(2026, 11, 1, 12, tzinfo=UTC)
    out = Seeded()
    pds = Pds(pds_url)
    try:
        step = 0

        def at() -> datetime:
            nonlocal step
            step += 1
            return t0 + timedelta(hours=step)

        for name in [a.name for a in ARTISTS] + [LISTENER[0]]:
            out.handles[name] = f"{name}{domain}"
            out.dids[name] = await pds.account(out.handles[name])
        for a in ARTISTS:
            await _profiles(pds, out.dids[a.name], a.display_name, a.bio, a.colours, at())
        sam = out.dids[LISTENER[0]]
        await _profiles(pds, sam, LISTENER[1], LISTENER[2], ((90, 90, 90), (200, 200, 220)), at())
        for a in ARTISTS:
            did = out.dids[a.name]
            for s in a.songs:
                audio = melody_wav([_note(n) for n in s.melody])
                blob = await pds.blob(did, audio, "audio/wav")
                t = at()
                rec: dict[str, Any] = {"$type": "fm.plyr.track", "title": s.title, "artist": a.display_name,
                                       "fileType": "wav", "createdAt": _iso(t)}
                if s.album:
                    rec["album"] = s.album
                rec["duration"] = wav_seconds(audio)
                if s.features:
                    rec["features"] = [{"did": out.dids[f], "handle": out.handles[f]} for f in s.features]
                if s.description:
                    rec["description"] = s.description
                rec["audioBlob"] = blob
                out.tracks[s.title] = await pds.put(did, "fm.plyr.track", _tid(t), rec)
            if a.album_order:
                t = at()
                await pds.put(did, "fm.plyr.list", _tid(t), {
                    "$type": "fm.plyr.list", "name": a.songs[0].album, "listType": "album",
                    "items": [{"subject": out.tracks[title]} for title in a.album_order], "createdAt": _iso(t)})
        await _listener(pds, sam, out, at)
    finally:
        await pds.aclose()
    return out


async def _profiles(pds: Pds, did: str, display_name: str, bio: str,
                    colours: tuple[tuple[int, int, int], tuple[int, int, int]], t: datetime) -> None:
    avatar = await pds.blob(did, gradient_png(*colours), "image/png")
    await pds.put(did, "app.bsky.actor.profile", "self", {
        "$type": "app.bsky.actor.profile", "displayName": display_name, "description": bio, "avatar": avatar,
        "createdAt": _iso(t)})
    await pds.put(did, "fm.plyr.actor.profile", "self", {"$type": "fm.plyr.actor.profile", "bio": bio,
                                                         "createdAt": _iso(t)})


async def _listener(pds: Pds, did: str, out: Seeded, at: Any) -> None:
    """Likes, timed comments, a playlist, a teal.fm play and now-playing status."""
    for title in ("Glass Harbor", "Static Bloom", "Cerulean", "Rainmaker", "Late Bus Home"):
        t = at()
        await pds.put(did, "fm.plyr.like", _tid(t), {"$type": "fm.plyr.like", "subject": out.tracks[title],
                                                     "createdAt": _iso(t)})
    for title, ms, text in (("Glass Harbor", 700, "that drop!"), ("Glass Harbor", 1500, "love the ending"),
                            ("Cerulean", 400, "so calm"), ("Rainmaker", 900, "the feature works so well")):
        t = at()
        await pds.put(did, "fm.plyr.comment", _tid(t), {"$type": "fm.plyr.comment", "subject": out.tracks[title],
                                                        "text": text, "timestampMs": ms, "createdAt": _iso(t)})
    t = at()
    await pds.put(did, "fm.plyr.list", _tid(t), {
        "$type": "fm.plyr.list", "name": "Sunday Mix", "listType": "playlist", "createdAt": _iso(t),
        "items": [{"subject": out.tracks[x]} for x in ("Late Bus Home", "Slow Orbit", "Copper Wire", "Cerulean")]})
    for title, artist in (("Glass Harbor", "Nova Lights"), ("Cerulean", "Marisol Vega")):
        t = at()
        await pds.put(did, "fm.teal.feed.play", _tid(t), {
            "$type": "fm.teal.feed.play", "trackName": title, "artists": [{"artistName": artist}],
            "musicServiceUri": "https://plyr.fm", "submissionClientAgent": "plyr.fm/1.0", "playedTime": _iso(t),
            "duration": 2, "originUri": out.tracks[title]["uri"]})
