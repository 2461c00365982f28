"""file_id scheme and the /audio fallback decision (pure)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from appview.playback.ids import FileRef, file_id, parse_file_id
from appview.playback.resolve import Candidate, FromMirror, RedirectTo, Refuse, decide
from core.blobstore.cid import cid_of
from core.blobstore.settings import BlobSettings

HOSTS = BlobSettings().allowed_audio_hosts
CID = cid_of(b"audio")


def test_file_id_scheme() -> None:
    assert file_id(7, CID, "https://audio.plyr.fm/audio/0123456789abcdef.mp3") == CID
    assert file_id(7, None, "https://audio.plyr.fm/audio/0123456789abcdef.mp3") == "0123456789abcdef"
    assert file_id(7, None, "https://api.plyr.fm/audio/0123456789abcdef") == "0123456789abcdef"
    assert file_id(7, None, "https://example.com/song.mp3") == "t7"
    assert file_id(7, None, "http://audio.plyr.fm/audio/0123456789abcdef.mp3") == "t7"
    assert file_id(7, "not-a-cid", None) == "t7"
    assert parse_file_id(CID) == FileRef("blob", CID)
    assert parse_file_id("0123456789abcdef") == FileRef("plyr", "0123456789abcdef")
    assert parse_file_id("t7") == FileRef("track", "7")
    for bad in ("", "t0", "t-1", "T7", "../etc/passwd", "t" + "9" * 20, "ABCDEF0123456789", CID.upper(), "x" * 100):
        assert parse_file_id(bad) is None


@given(st.integers(min_value=1, max_value=2**63 - 1), st.binary(max_size=64), st.booleans(),
       st.from_regex(r"[0-9a-f]{8,64}", fullmatch=True), st.sampled_from([".mp3", ".wav", "", "?x=1"]))
def test_file_ids_parse_back_to_their_kind(track_id: int, data: bytes, with_blob: bool, hexid: str, tail: str
                                           ) -> None:
    url = f"https://audio.plyr.fm/audio/{hexid}{tail}"
    cid = cid_of(data) if with_blob else None
    fid = file_id(track_id, cid, url)
    ref = parse_file_id(fid)
    assert ref is not None
    assert ref == (FileRef("blob", cid) if cid else FileRef("plyr", hexid))
    assert parse_file_id(file_id(track_id, None, None)) == FileRef("track", str(track_id))


BASE = Candidate(track_id=1, did="did:plc:a", gated=False, blob_cid=CID, blob_mime="audio/wav",
                 blob_state="mirrored", blob_reason=None, blob_store="local", pds="https://pds.example",
                 audio_url="https://audio.plyr.fm/audio/0123456789abcdef.wav", url_dead=False, active=True)


def test_fallback_order() -> None:
    assert decide([BASE], "local", HOSTS) == FromMirror(CID, "audio/wav")
    pds = decide([replace(BASE, blob_state="pending")], "local", HOSTS)
    assert isinstance(pds, RedirectTo) and pds.source == "pds" and "com.atproto.sync.getBlob" in pds.url
    assert decide([BASE], "s3", HOSTS).source == "pds"  # type: ignore[union-attr]  # copy is in another store
    for dead_pds in ({"blob_state": "gone"}, {"blob_state": "failed", "blob_reason": "cid_mismatch:bafk"},
                     {"blob_state": "pending", "pds": None}, {"blob_state": "pending", "pds": "ftp://x"}):
        got = decide([replace(BASE, **dead_pds)], "local", HOSTS)  # type: ignore[arg-type]
        assert got == RedirectTo(BASE.audio_url, "url")  # type: ignore[arg-type]
    none_left = replace(BASE, blob_state="gone", url_dead=True)
    assert isinstance(decide([none_left], "local", HOSTS), Refuse)
    off_list = replace(BASE, blob_state="gone", audio_url="https://evil.example/audio/0123456789abcdef.wav")
    assert decide([off_list], "local", HOSTS).status == 404  # type: ignore[union-attr]
    assert decide([replace(BASE, active=False)], "local", HOSTS).status == 404  # type: ignore[union-attr]
    assert decide([], "local", HOSTS).status == 404  # type: ignore[union-attr]


def test_gated_tracks_never_use_the_mirror_or_the_pds() -> None:
    gated = replace(BASE, gated=True, audio_url="https://api.plyr.fm/audio/0123456789abcdef")
    assert decide([gated], "local", HOSTS) == RedirectTo(gated.audio_url, "gated_url")  # type: ignore[arg-type]
    refused = decide([replace(gated, audio_url=None)], "local", HOSTS)
    assert isinstance(refused, Refuse) and refused.status == 402
    # Shared with an ungated track: those bytes are public anyway.
    assert decide([gated, BASE], "local", HOSTS) == FromMirror(CID, "audio/wav")


@given(st.text(max_size=100))
def test_parse_file_id_never_raises(fid: str) -> None:
    ref = parse_file_id(fid)
    assert ref is None or ref.kind in ("blob", "plyr", "track")
