"""Blob CIDs, the local store, and the playability rule in Python and SQL agreeing."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from core.blobstore import LocalFile, LocalStore, safe_audio_mime
from core.blobstore.cid import UnsupportedCid, cid_of, expected_digest, is_blob_cid
from core.blobstore.playability import (
    PLAYABILITY_JOINS,
    PLAYABILITY_SQL,
    allowed_audio_url,
    audio_host,
    classify,
    host_patterns,
)
from core.blobstore.settings import DEFAULT_AUDIO_HOSTS

HOSTS = tuple(DEFAULT_AUDIO_HOSTS.split(","))


@given(st.binary(max_size=256))
def test_cid_roundtrip(data: bytes) -> None:
    cid = cid_of(data)
    assert is_blob_cid(cid) and expected_digest(cid) == hashlib.sha256(data).digest()


def test_cid_rejects_what_we_cannot_verify() -> None:
    dag_cbor = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    for bad in (dag_cbor, "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "", "b" * 59, cid_of(b"x").upper()):
        with pytest.raises(UnsupportedCid):
            expected_digest(bad)


def test_safe_audio_mime() -> None:
    assert safe_audio_mime("audio/mpeg") == "audio/mpeg"
    assert safe_audio_mime("Audio/Vnd.Wave; codec=1") == "audio/vnd.wave"
    for bad in (None, "", "text/html", "audio/", "audio/x\r\nset-cookie: a", "audio/<script>"):
        assert safe_audio_mime(bad) == "application/octet-stream"


def test_allowed_audio_url() -> None:
    assert allowed_audio_url("https://audio.plyr.fm/audio/x.mp3", HOSTS)
    assert allowed_audio_url("https://pub-abc.r2.dev/audio/x.mp3", HOSTS)
    assert allowed_audio_url("https://AUDIO.plyr.fm:443/x.mp3?a=b#c", HOSTS)
    assert allowed_audio_url("https://audio.plyr.fm", HOSTS)
    for bad in ("http://audio.plyr.fm/x", "https://audio.plyr.fm.evil.com/x", "https://evil.com/audio.plyr.fm",
                "https://user@audio.plyr.fm/x", "https://audio.plyr.fm:99999/x", "javascript:alert(1)", None,
                "https://r2.dev.evil/x", "https://xr2.dev/x", "https://audio.plyr.fm\t/x", "https://audio.plyr.fm:/x",
                "https://audio.plyr.fm:65536/x", "https://aud\nio.plyr.fm/x", "https://audio.plyr.fm/\u00e9",
                "https://audio.plyr.fm\\@evil.com/x"):
        assert not allowed_audio_url(bad, HOSTS), bad


# Pieces of URLs that parsers disagree on: ports out of range or empty, credentials, backslashes, control
# characters and whitespace (which `urlsplit` silently drops), non-ASCII, IPv6 brackets, case.
_URL_PIECES = st.sampled_from([
    "https://", "http://", "HTTPS://", "audio.plyr.fm", "AUDIO.PLYR.FM", "pub-1.r2.dev", ".r2.dev", "r2.dev",
    "evil.com",
    "@", ":", ":443", ":99999", ":065535", ":65536", ":0", "/", "?", "#", "\\", "%2f", "x", "[::1]", " ", "\t", "\n",
    "\r", "\x7f", "\x0b", ".", "é", "K", "\u212a", "İ", "/a.mp3"])
_ANY_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40)
_URLS = st.one_of(st.lists(_URL_PIECES, min_size=1, max_size=8).map("".join), _ANY_TEXT.map(lambda s: "https://" + s))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_URLS, min_size=1, max_size=25))
def test_audio_host_sql_equals_python_on_hostile_urls(db_url: str, urls: list[str]) -> None:
    """`track.audio_host` (what views judge playability by) is `audio_host` (what `/audio` judges by)."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("INSERT INTO track (id, uri, did, rkey, cid, rev, title, artist, file_type, audio_url,"
                            " features, self_labels, created_at, indexed_at, record, sort_at)"
                            " SELECT n, 'at://did:plc:h/fm.plyr.track/' || n, 'did:plc:h', n::text, 'c', 'r', 't', 'a',"
                            " 'mp3', u, '[]', '[]', 'x', now(), '{}', now()"
                            " FROM unnest(%s::text[]) WITH ORDINALITY AS x(u, n) RETURNING audio_url, audio_host",
                            (urls,)).fetchall()
        conn.rollback()
    for url, host in rows:
        assert host == audio_host(url), url
        assert (host is not None and any(host == h or (h.startswith(".") and host.endswith(h)) for h in HOSTS)) \
            == allowed_audio_url(url, HOSTS), url


async def test_local_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "blobs")
    data = b"RIFF" + bytes(1000)
    cid = cid_of(data)
    src = tmp_path / "spool.part"
    src.write_bytes(data)
    assert await store.locate(cid, None) is None
    await store.put_verified(cid, src, len(data), "audio/wav")
    assert not src.exists()
    loc = await store.locate(cid, None)
    assert isinstance(loc, LocalFile) and loc.path.read_bytes() == data and loc.size == len(data)
    await store.delete(cid)
    await store.delete(cid)  # idempotent
    assert await store.size_of(cid) is None
    with pytest.raises(ValueError):
        store.path_for("../../etc/passwd")


URLS = (None, "https://audio.plyr.fm/audio/0123456789abcdef.mp3", "https://evil.example/a.mp3",
        "http://audio.plyr.fm/a.mp3", "https://u@audio.plyr.fm/a.mp3", "https://pub-1.r2.dev/audio/a.mp3",
        "https://audio.plyr.fm:99999/a.mp3", "https://audio.plyr.fm\t/a.mp3", "https://audio.plyr.fm:/a.mp3")
BLOBS = (None, "pending", "mirrored", "gone", "mismatch")


async def test_playability_sql_agrees_with_python(conn: psycopg.AsyncConnection) -> None:
    cases = list(itertools.product((False, True), BLOBS, (None, "https://pds.example"), URLS, (False, True)))
    async with conn.cursor() as cur:
        for i, (gated, blob, pds, url, dead) in enumerate(cases):
            did = f"did:plc:t{i}"
            cid = cid_of(str(i).encode()) if blob else None
            if pds:
                await cur.execute("INSERT INTO actor (did, pds, status, active, seq)"
                                  " VALUES (%s, %s, 'active', true, 1)", (did, pds))
            if blob:
                state, reason = ("failed", "cid_mismatch:bafk") if blob == "mismatch" else (blob, None)
                await cur.execute("INSERT INTO blob (cid, state, reason, store) VALUES (%s, %s, %s, 'local')",
                                  (cid, state, reason))
            if url and dead:
                await cur.execute("INSERT INTO audio_url_check (url, ok, checked_at) VALUES (%s, false, now())"
                                  " ON CONFLICT (url) DO NOTHING", (url,))
            await cur.execute(
                "INSERT INTO track (id, uri, did, rkey, cid, rev, title, artist, file_type, audio_url, audio_blob_cid,"
                " features, support_gate, self_labels, created_at, indexed_at, record, sort_at) VALUES"
                " (%s, %s, %s, 'k', 'c', 'r', 't', 'a', 'mp3', %s, %s, '[]', %s, '[]', 'x', now(), '{}', now())",
                (i + 1, f"at://{did}/fm.plyr.track/k", did, url, cid, Jsonb({"type": "any"}) if gated else None))
        await cur.execute(f"SELECT t.id, {PLAYABILITY_SQL} FROM track t {PLAYABILITY_JOINS}",
                          {"audio_hosts": host_patterns(HOSTS)})
        got = dict(await cur.fetchall())
    for i, (gated, blob, pds, url, dead) in enumerate(cases):
        state, reason = ("failed", "cid_mismatch:bafk") if blob == "mismatch" else (blob, None)
        # A URL is dead for every track that uses it (the check is per URL).
        url_dead = bool(url) and any(u == url and d for (_, _, _, u, d) in cases)
        want = classify(gated=gated, blob_cid="x" if blob else None, blob_state=state, blob_reason=reason,
                        pds=pds, url=url, url_dead=url_dead, hosts=HOSTS)
        assert got[i + 1] == want, (gated, blob, pds, url, dead)
