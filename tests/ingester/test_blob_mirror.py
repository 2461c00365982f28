"""The mirror against a scripted PDS: CID check, caps, redirects, SSRF guard, backoff, the checker."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from aiohttp import web
from prometheus_client import REGISTRY

from appview.playback import playability_for
from core.blobstore import LocalStore
from core.blobstore.cid import cid_of, expected_digest
from core.outbound_policy import RefusedAddress
from ingester.blobs.checker import PlayabilityChecker, url_alive
from ingester.blobs.fetch import GuardedHttp
from ingester.blobs.mirror import BlobMirror
from ingester.settings import IngesterSettings


@dataclass
class FakePds:
    url: str = ""
    # cid → (status, body, extra headers)
    blobs: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    hits: int = 0


@pytest.fixture
async def pds() -> AsyncIterator[FakePds]:
    fake = FakePds()

    async def get_blob(request: web.Request) -> web.StreamResponse:
        fake.hits += 1
        status, body, headers = fake.blobs.get(request.query.get("cid", ""), (400, b'{"error":"BlobNotFound"}', {}))
        if "chunked" in headers:
            resp = web.StreamResponse(status=status)
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            await resp.write(body)
            await resp.write_eof()
            return resp
        return web.Response(status=status, body=body, headers=headers)

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(request.query["to"])

    app = web.Application()
    app.router.add_get("/xrpc/com.atproto.sync.getBlob", get_blob)
    app.router.add_get("/hop", hop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


async def _fetch(http: GuardedHttp, pds_url: str, cid: str, tmp_path: Path, max_bytes: int = 10**6) -> object:
    dest = tmp_path / "spool.part"
    dest.unlink(missing_ok=True)
    got = await http.fetch_blob(pds_url, "did:plc:x", cid, expected_digest(cid), dest, max_bytes)
    assert got.ok == dest.exists()  # nothing is left behind on failure
    return got


async def test_fetch_outcomes(pds: FakePds, tmp_path: Path) -> None:
    good = os.urandom(5000)
    cid = cid_of(good)
    http = GuardedHttp(allow_private=True, timeout_s=10)
    try:
        pds.blobs[cid] = (200, good, {})
        assert (await _fetch(http, pds.url, cid, tmp_path)).ok  # type: ignore[attr-defined]
        assert (tmp_path / "spool.part").read_bytes() == good
        pds.blobs[cid] = (200, good[:-1] + b"\0", {})
        got = await _fetch(http, pds.url, cid, tmp_path)
        assert got.reason.startswith("cid_mismatch:") and not got.retry  # type: ignore[attr-defined]
        pds.blobs[cid] = (200, good, {})
        assert (await _fetch(http, pds.url, cid, tmp_path, max_bytes=4999)).reason == "too_large"  # type: ignore
        pds.blobs[cid] = (200, good, {"chunked": "1"})  # no content-length: the cap applies while streaming
        assert (await _fetch(http, pds.url, cid, tmp_path, max_bytes=4999)).reason == "too_large"  # type: ignore
        assert (await _fetch(http, pds.url, cid, tmp_path)).ok  # type: ignore[attr-defined]
        pds.blobs[cid] = (404, b"", {})
        assert (await _fetch(http, pds.url, cid, tmp_path)).gone  # type: ignore[attr-defined]
        pds.blobs[cid] = (400, b'{"error":"BlobNotFound","message":"nope"}', {})
        assert (await _fetch(http, pds.url, cid, tmp_path)).gone  # type: ignore[attr-defined]
        pds.blobs[cid] = (503, b"busy", {})
        assert (await _fetch(http, pds.url, cid, tmp_path)).retry  # type: ignore[attr-defined]
        # Redirects: same scheme is followed (and checked), another scheme is refused.
        pds.blobs[cid] = (200, good, {})
        target = f"{pds.url}/xrpc/com.atproto.sync.getBlob?cid={cid}"
        async with http.request("GET", f"{pds.url}/hop?to={target}") as resp:
            assert resp.status == 200 and await resp.read() == good
        with pytest.raises(RefusedAddress):
            async with http.request("GET", f"{pds.url}/hop?to=https://127.0.0.1:1/x"):
                pass
    finally:
        await http.aclose()


async def test_guard_refuses_private_addresses(pds: FakePds, tmp_path: Path) -> None:
    data = b"x" * 100
    cid = cid_of(data)
    pds.blobs[cid] = (200, data, {})
    http = GuardedHttp(allow_private=False, timeout_s=10)
    try:
        port = pds.url.rsplit(":", 1)[1]
        for url in (pds.url, f"https://127.0.0.1:{port}", f"https://localhost:{port}"):
            got = await _fetch(http, url, cid, tmp_path)
            assert got.reason == "refused_address", url  # type: ignore[attr-defined]
        assert pds.hits == 0
    finally:
        await http.aclose()


async def _seed(conn: psycopg.AsyncConnection, did: str, pds_url: str, cids: list[str]) -> None:
    async with conn.cursor() as cur:
        await cur.execute("INSERT INTO actor (did, pds, status, active, seq) VALUES (%s, %s, 'active', true, 1)",
                          (did, pds_url))
        for i, cid in enumerate(cids):
            await cur.execute(
                "INSERT INTO track (id, uri, did, rkey, cid, rev, title, artist, file_type, audio_blob_cid,"
                " audio_blob_mime, features, self_labels, created_at, indexed_at, record, sort_at) VALUES"
                " (%s, %s, %s, 'k', 'c', 'r', 't', 'a', 'mp3', %s, 'audio/mpeg', '[]', '[]', 'x', now(), '{}', now())",
                (i + 1, f"at://{did}/fm.plyr.track/{i}", did, cid))
    await conn.commit()


async def test_mirror_accepts_only_matching_bytes(pds: FakePds, conn: psycopg.AsyncConnection, db_url: str,
                                                  tmp_path: Path) -> None:
    good, liar, flaky = os.urandom(3000), os.urandom(3000), os.urandom(3000)
    cids = [cid_of(good), cid_of(liar), cid_of(flaky)]
    pds.blobs[cids[0]] = (200, good, {})
    pds.blobs[cids[1]] = (200, os.urandom(3000), {})  # bytes that don't match the CID
    pds.blobs[cids[2]] = (503, b"", {})
    await _seed(conn, "did:plc:artist", pds.url, cids)
    settings = IngesterSettings(APPVIEW_DATA_DIR=tmp_path, outbound_allow_private=True, blob_release_grace_s=0)
    store = LocalStore(settings.blob_dir)
    mirror = BlobMirror(settings, db_url, store)
    try:
        await mirror.drain()
    finally:
        await mirror.aclose()
    async with conn.cursor() as cur:
        await cur.execute("SELECT cid, state, split_part(reason, ':', 1) FROM blob")
        states = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
    await conn.commit()
    assert states == {cids[0]: ("mirrored", None), cids[1]: ("failed", "cid_mismatch"),
                      cids[2]: ("pending", "http_503")}
    assert (await store.locate(cids[0], None)).path.read_bytes() == good  # type: ignore[union-attr]
    assert await store.size_of(cids[1]) is None
    assert not list((tmp_path / "blob-spool").iterdir())
    uris = [f"at://did:plc:artist/fm.plyr.track/{i}" for i in range(3)]
    assert await playability_for(conn, uris) == {uris[0]: "mirrored", uris[1]: "dead", uris[2]: "pds_only"}

    # The checker: a copy lost from the store goes back to pending; a PDS that 404s marks the blob gone.
    await store.delete(cids[0])
    pds.blobs[cids[2]] = (404, b"", {})
    checker = PlayabilityChecker(settings, db_url, store, GuardedHttp(allow_private=True, timeout_s=10))
    try:
        counts = await checker.check_once()
    finally:
        await checker.http.aclose()
    async with conn.cursor() as cur:
        await cur.execute("SELECT cid, state, reason FROM blob WHERE cid <> %s", (cids[1],))
        after = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
    assert after[cids[0]] == ("pending", "missing_in_store")
    assert after[cids[2]][0] == "gone"
    assert counts == {"mirrored": 0, "pds_only": 1, "url_only": 0, "dead": 2}
    assert REGISTRY.get_sample_value("tracks_playability", {"state": "dead"}) == 2  # what /metrics shows
    assert REGISTRY.get_sample_value("blob_state", {"state": "gone"}) == 1


def test_url_alive() -> None:
    assert url_alive(200) and url_alive(302) and url_alive(402)
    assert url_alive(404) is False and url_alive(410) is False
    assert url_alive(None) is None and url_alive(500) is None
