"""A source that started at the live tip and dies before its first commit (a reader bug on one frame, the
connection cut) resumes from just before the first frame it received, not from a later tip: nothing it
received is lost. Seen on the real PDS under load: the restarted source came back at the tip and the track
that killed the reader never reached the log."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingester.decode.frames import frame_seq
from ingester.sources.firehose import FirehoseSource
from ingester.sources.jetstream import JetstreamSource
from tests.e2e.conftest import Query, eventually
from tests.hostile.firehose_server import HostileRelay, deep_nesting, envelope, random_bytes, seq_of, truncated
from tests.hostile.test_hostile_relay import following
from tests.ingester.framekit import Net, track

T = "fm.plyr.track/"


async def test_a_reader_killed_before_its_first_commit_resumes_below_the_tip(
        db_url: str, q: Query, monkeypatch: object) -> None:
    net = Net()
    alice = net.repo("alice.test")
    c1 = alice.commit([("create", f"{T}3kaaaaaaaaa22", track("one"))])
    c2 = alice.commit([("create", f"{T}3kbbbbbbbbb22", track("two"))])
    relay = HostileRelay([c1, c2])
    real_frame = FirehoseSource.frame
    killed: list[bytes] = []

    def buggy(self: FirehoseSource, message: str | bytes) -> bytes | None:
        if not killed:  # the reader dies on the first frame it receives, as a decoder bug would
            killed.append(message if isinstance(message, bytes) else b"")
            relay.tip = seq_of(c2)  # meanwhile the host's live tip moved past both frames
            raise RuntimeError("decoder bug")
        return real_frame(self, message)

    monkeypatch.setattr(FirehoseSource, "frame", buggy)  # type: ignore[attr-defined]
    async with relay.running(), following(db_url, relay.url, net.resolver()):
        await eventually(q, "SELECT title FROM track ORDER BY title", [("one",), ("two",)], timeout=30)
        await eventually(q, "SELECT cursor FROM source_cursor", [(seq_of(c2),)])
    assert killed == [c1]
    first = seq_of(c1)
    assert first is not None and relay.cursors[:2] == [None, first - 1]


@given(st.binary(max_size=400))
def test_frame_seq_never_raises(data: bytes) -> None:
    seq = frame_seq(data)
    assert seq is None or 0 < seq < 2**63


def test_frame_seq_of_hostile_frames() -> None:
    net = Net()
    commit = net.repo("alice.test").commit([("create", f"{T}3kaaaaaaaaa22", track("one"))])
    assert frame_seq(commit) == seq_of(commit)
    for junk in (truncated(commit), random_bytes(300), deep_nesting(), b"", envelope("#commit", {"seq": -5}),
                 envelope("#commit", {"seq": 2**64}), envelope("#identity", {"seq": "7"})):
        assert frame_seq(junk) is None


def test_jetstream_floor_from_time_us_only() -> None:
    source = JetstreamSource("ws://127.0.0.1:1", version="v1", cursor=None, compress=False)
    assert source.seq_of('{"did":"did:plc:x","time_us":1725911162329308,"kind":"commit"}') == 1725911162329308
    for junk in ('{"time_us":-1}', '{"time_us":"1"}', "[1]", "{", '{"time_us":1e20}', b"\xff\xfe", "null"):
        assert source.seq_of(junk) is None


async def test_the_committed_cursor_wins_over_the_floor() -> None:
    source = FirehoseSource("ws://127.0.0.1:1", cursor=None, frame_seq=frame_seq)
    assert source.resume is None and (await source.connect_url()).endswith("subscribeRepos")
    source.floor = 41
    assert source.resume == 41 and (await source.connect_url()).endswith("cursor=41")
    source.cursor = 50
    assert source.resume == 50
