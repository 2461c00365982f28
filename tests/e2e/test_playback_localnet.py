"""The blob mirror and /audio end to end: real PDS → firehose → mirror (local and S3) → /audio."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest

from appview.playback import file_id, playability_for
from core.blobstore import LocalStore
from core.blobstore.cid import cid_of
from core.db.connect import connect
from ingester.blobs.mirror import BlobMirror
from tests.e2e.blobs_kit import app_client, mirroring_ingester, store_settings
from tests.e2e.conftest import Query, eventually, wav_bytes
from tests.localnet.peer import Localnet, Xrpc

NOW = "2026-11-24T12:00:00.000Z"
STORES = ["local", "s3"]


def track(title: str, **extra: object) -> dict:
    return {"$type": "fm.plyr.track", "title": title, "artist": "Alice", "fileType": "wav", "createdAt": NOW,
            **extra}


def audio_bytes(n: int = 300_000) -> bytes:
    head = wav_bytes()
    return head + os.urandom(n - len(head))


def handle(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}.test"


async def _state(q: Query, cid: str, state: str) -> None:
    await eventually(q, "SELECT state FROM blob WHERE cid = %s", [(state,)], cid, timeout=30)


async def _fetch(client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET through /audio; follow a 307 to S3 with a real HTTP client (the app redirects, never proxies)."""
    r = await client.get(path, headers=headers)
    if r.status_code == 307 and r.headers["location"].startswith("http://127.0.0.1"):
        async with httpx.AsyncClient() as s3:
            return await s3.get(r.headers["location"], headers=headers)
    return r


@pytest.mark.parametrize("kind", STORES)
async def test_mirror_then_play_whole_and_by_range(kind: str, xrpc: Xrpc, localnet: Localnet, q: Query,
                                                    db_url: str, tmp_path: Path, request: pytest.FixtureRequest
                                                    ) -> None:
    stores = store_settings(kind, tmp_path, request.getfixturevalue("s3_endpoint") if kind == "s3" else None)
    running = mirroring_ingester(db_url, localnet, stores)
    await running.start()
    try:
        alice = await xrpc.create_account(handle("alice"))
        data = audio_bytes()
        blob = await xrpc.upload_blob(alice, data, "audio/wav")
        cid = blob["ref"]["$link"]
        assert cid == cid_of(data)
        t = await xrpc.create(alice, "fm.plyr.track", track("Song", audioBlob=blob))
        await _state(q, cid, "mirrored")
    finally:
        await running.stop()
    [(tid, store)] = await q("SELECT t.id, b.store FROM track t JOIN blob b ON b.cid = t.audio_blob_cid")
    assert store == kind
    fid = file_id(tid, cid, None)
    assert fid == cid
    async with await connect(db_url) as conn:
        assert await playability_for(conn, [t["uri"]]) == {t["uri"]: "mirrored"}

    async with app_client(db_url, stores) as client:
        whole = await _fetch(client, f"/audio/{fid}")
        assert whole.status_code == 200 and whole.content == data
        part = await _fetch(client, f"/audio/{fid}", {"range": "bytes=1000-4999"})
        assert part.status_code == 206 and part.content == data[1000:5000]
        assert part.headers["content-range"] == f"bytes 1000-4999/{len(data)}"
        tail = await _fetch(client, f"/audio/{fid}", {"range": "bytes=-100"})
        assert tail.status_code == 206 and tail.content == data[-100:]
        for headers in ({}, {"range": "bytes=10-20"}, {"range": f"bytes={len(data)}-"}):
            get = await client.get(f"/audio/{fid}", headers=headers)
            head = await client.head(f"/audio/{fid}", headers=headers)
            assert head.status_code == get.status_code
            assert head.content == b""
            if kind == "local":
                assert dict(head.headers) == dict(get.headers)
            else:  # presigned URLs carry a timestamp; everything else is equal
                assert get.status_code == 307
                assert {k: v for k, v in head.headers.items() if k != "location"} == \
                       {k: v for k, v in get.headers.items() if k != "location"}
        if kind == "local":
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["etag"] == f'"{cid}"'
            assert (await client.get(f"/audio/{fid}", headers={"range": f"bytes={len(data)}-"})).status_code == 416
        assert (await client.get("/audio/not-an-id")).status_code == 404
        assert (await client.get(f"/audio/{cid_of(b'unknown')}")).status_code == 404


async def test_gated_tracks_never_leak_mirrored_bytes(xrpc: Xrpc, localnet: Localnet, q: Query, db_url: str,
                                                      tmp_path: Path) -> None:
    stores = store_settings("local", tmp_path, None)
    running = mirroring_ingester(db_url, localnet, stores)
    await running.start()
    gate = {"type": "any"}
    try:
        alice = await xrpc.create_account(handle("gated"))
        blob = await xrpc.upload_blob(alice, audio_bytes(50_000), "audio/wav")
        cid = blob["ref"]["$link"]
        gated_url = "https://api.plyr.fm/audio/0123456789abcdef"
        t1 = await xrpc.create(alice, "fm.plyr.track", track("Gated", audioBlob=blob, supportGate=gate,
                                                              audioUrl=gated_url))
        other = await xrpc.upload_blob(alice, audio_bytes(40_000), "audio/wav")
        t2 = await xrpc.create(alice, "fm.plyr.track", track("Gated, no URL", audioBlob=other, supportGate=gate))
        await _state(q, cid, "mirrored")
        await _state(q, other["ref"]["$link"], "mirrored")
    finally:
        await running.stop()
    async with app_client(db_url, stores) as client:
        for path in (f"/audio/{cid}", "/audio/0123456789abcdef"):
            for method in ("GET", "HEAD"):
                r = await client.request(method, path, headers={"range": "bytes=0-"})
                assert r.status_code == 307 and r.headers["location"] == gated_url and r.content == b""
        for method in ("GET", "HEAD"):
            r = await client.request(method, f"/audio/{other['ref']['$link']}")
            assert r.status_code == 402 and r.headers["x-support-required"] == "true"
            assert (r.content == b"") == (method == "HEAD")
            assert b"RIFF" not in r.content
    async with await connect(db_url) as conn:
        assert await playability_for(conn, [t1["uri"], t2["uri"]]) == {t1["uri"]: "url_only", t2["uri"]: "dead"}


async def test_release_only_when_unreferenced(xrpc: Xrpc, localnet: Localnet, q: Query, db_url: str,
                                              tmp_path: Path) -> None:
    stores = store_settings("local", tmp_path, None)
    running = mirroring_ingester(db_url, localnet, stores)
    await running.start()
    try:
        alice = await xrpc.create_account(handle("shared"))
        data = audio_bytes(60_000)
        blob = await xrpc.upload_blob(alice, data, "audio/wav")
        cid = blob["ref"]["$link"]
        t1 = await xrpc.create(alice, "fm.plyr.track", track("One", audioBlob=blob))
        t2 = await xrpc.create(alice, "fm.plyr.track", track("Two", audioBlob=blob))
        await _state(q, cid, "mirrored")
        stored = tmp_path / "blobs" / cid[-2:] / cid
        assert stored.read_bytes() == data

        # An edit that drops audioBlob (plyr.fm's pre-#1904 bug): the other track still references it.
        r1 = t1["uri"].rsplit("/", 1)[1]
        await xrpc.put(alice, "fm.plyr.track", r1, track("One", audioUrl="https://audio.plyr.fm/audio/00aa11bb.wav"))
        await eventually(q, "SELECT audio_blob_cid FROM track WHERE uri = %s", [(None,)], t1["uri"])
        # A whole mirror pass after the edit is projected keeps it (the running one races, this one doesn't).
        extra = BlobMirror(running.settings, db_url, LocalStore(tmp_path / "blobs"))
        await extra.drain()
        await extra.aclose()
        await _state(q, cid, "mirrored")
        assert stored.exists()

        # The last reference goes: the blob leaves the store.
        await xrpc.delete(alice, "fm.plyr.track", t2["uri"].rsplit("/", 1)[1])
        await _state(q, cid, "released")
        await eventually(q, "SELECT store FROM blob WHERE cid = %s", [(None,)], cid)
        assert not stored.exists()

        # Referenced again (the PDS garbage-collected it too, so the artist uploads it anew): mirrored again.
        blob = await xrpc.upload_blob(alice, data, "audio/wav")
        await xrpc.create(alice, "fm.plyr.track", track("Three", audioBlob=blob))
        await _state(q, cid, "mirrored")
        assert stored.read_bytes() == data
    finally:
        await running.stop()


async def test_pds_gone_after_mirroring_still_plays(xrpc: Xrpc, q: Query, db_url: str, tmp_path: Path) -> None:
    own = Localnet()  # a PDS of our own, so that we can take it away
    own.start()
    try:
        own_xrpc = Xrpc(own.pds_url)
        stores = store_settings("local", tmp_path, None)
        running = mirroring_ingester(db_url, own, stores)
        await running.start()
        try:
            bob = await own_xrpc.create_account(handle("bob"))
            data = audio_bytes(80_000)
            blob = await own_xrpc.upload_blob(bob, data, "audio/wav")
            await own_xrpc.create(bob, "fm.plyr.track", track("Survivor", audioBlob=blob))
            await _state(q, blob["ref"]["$link"], "mirrored")
        finally:
            await running.stop()
            await own_xrpc.aclose()
    finally:
        own.stop()
    async with app_client(db_url, stores) as client:
        r = await client.get(f"/audio/{blob['ref']['$link']}", headers={"range": "bytes=5-"})
        assert r.status_code == 206 and r.content == data[5:]
