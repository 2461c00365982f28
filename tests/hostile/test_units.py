"""The isolation building blocks on their own: CBOR pre-scan, seq discipline, byte budget."""

from __future__ import annotations

import asyncio

import libipld
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingester.decode.cbor_scan import CborLimit, ItemBudget, scan
from ingester.decode.frames import FrameError, decode_frame
from ingester.sources.budget import ByteQueue
from ingester.sources.envelope import SeqCheck, Verdict
from tests.hostile.firehose_server import deep_nesting, empty_maps, identity_with_seq, slow_frame

A, P, D = Verdict.ACCEPT, Verdict.PENDING, Verdict.DUPLICATE


def test_scan_counts_items_and_skips_strings() -> None:
    enc = libipld.encode_dag_cbor({"a": [1, 2, {"b": b"x" * 10_000, "c": "y" * 10_000}], "d": None})
    assert scan(enc, max_items=100, max_depth=4) == 12
    with pytest.raises(CborLimit, match="more than 10 CBOR items"):
        scan(enc, max_items=10, max_depth=4)
    with pytest.raises(CborLimit, match="deeper than 2"):
        scan(enc, max_items=100, max_depth=2)
    budget = ItemBudget(15)
    scan(enc, max_items=100, max_depth=4, budget=budget)
    with pytest.raises(CborLimit, match="frame budget"):
        scan(enc, max_items=100, max_depth=4, budget=budget)


def test_small_blocks_skip_the_walk_only_within_the_frames_allowance() -> None:
    """`ItemBudget.unscanned`: a block too short to pass the item limit is charged its length (a bound on its
    items) instead of walked, until the frame's allowance is spent; deep nesting is still refused unless the
    caller checks the shape itself (`shaped`), and then the decoder's own recursion bound stops it."""
    enc = libipld.encode_dag_cbor({"a": [1, 2, 3], "b": "x"})
    budget = ItemBudget(1_000, unscanned=2 * len(enc))
    assert scan(enc, max_items=100, max_depth=32, budget=budget) == len(enc)  # not walked: its length
    assert scan(enc, max_items=100, max_depth=32, budget=budget) == len(enc)
    assert budget.unscanned == 0 and budget.remaining == 1_000
    assert scan(enc, max_items=100, max_depth=32, budget=budget) == 8  # allowance spent: walked and counted
    assert budget.remaining == 992
    deep = b"\x81" * 300 + b"\x00"  # 301 bytes, 301 levels
    with pytest.raises(CborLimit, match="deeper than 6"):
        scan(deep, max_items=20_000, max_depth=6, budget=ItemBudget(1_000, unscanned=10_000))
    assert scan(deep, max_items=20_000, max_depth=6, budget=ItemBudget(1_000, unscanned=10_000), shaped=True) == 301
    too_deep = b"\x81" * 19_000 + b"\x00"
    with pytest.raises(RecursionError):
        libipld.decode_dag_cbor(too_deep)  # what a shaped caller meets past the walk: caught as malformed


@given(st.lists(st.binary(max_size=300), max_size=40), st.integers(0, 3_000))
def test_the_allowance_bounds_what_a_frame_decodes(blocks: list[bytes], unscanned: int) -> None:
    """Whatever the blocks, a frame decodes at most its item budget plus its unscanned allowance."""
    budget = ItemBudget(500, unscanned=unscanned)
    decoded = 0
    for block in blocks:
        try:
            decoded += scan(block, max_items=200, max_depth=8, budget=budget, shaped=True)
        except CborLimit:
            break
    assert decoded <= 500 + unscanned


def test_bombs_are_refused_before_decoding() -> None:
    # 4.9 MB of empty maps (6.8 s to decode before the pre-scan) stops after 20,000 heads.
    with pytest.raises(FrameError, match="refused before decoding: more than 20000 CBOR items"):
        decode_frame(empty_maps())
    with pytest.raises(FrameError, match="more than 2 top-level"):
        decode_frame(b"\xa0" * 5_000_000)
    with pytest.raises(FrameError, match="nested deeper than 32"):
        decode_frame(deep_nesting())
    with pytest.raises(FrameError, match="1..2\\^63-1"):
        decode_frame(identity_with_seq(2**63))
    assert decode_frame(slow_frame(7)).seq == 7  # type: ignore[union-attr]  # the most work allowed: decoded


@given(st.binary(max_size=2000))
def test_scan_never_raises_anything_but_its_limit(data: bytes) -> None:
    try:
        scan(data, max_items=50, max_depth=8, max_objects=2)
    except CborLimit:
        pass


def check(last: int | None, requested: int | None = None, fresh: bool = False) -> SeqCheck:
    return SeqCheck(last=last, fresh=fresh, requested=requested)


def test_seq_rules() -> None:
    c = check(10)
    assert [c.admit(s, 100) for s in (11, 11, 5, 12)] == [A, D, D, A] and c.cursor == 12
    # an absurd jump is processed but never reaches the cursor, unless the next frame confirms it
    c = check(10)
    assert [c.admit(s, 100) for s in (2**63 - 1, 11, 12)] == [P, A, A] and c.cursor == 12
    c = check(10)
    assert [c.admit(s, 100) for s in (5000, 5001)] == [P, A] and c.cursor == 5001
    # a fresh connection whose host did not honour our cursor: reset, once confirmed
    c = check(1000, requested=1000, fresh=True)
    assert [c.admit(s, 100) for s in (3, 4, 5)] == [P, A, A] and c.cursor == 5
    c = check(1000, requested=1000, fresh=True)  # … an isolated low frame then ours again: an outlier
    assert [c.admit(s, 100) for s in (3, 1001)] == [P, A] and c.cursor == 1001
    # mid-connection, backwards is never a reset
    c = check(1000)
    assert [c.admit(s, 100) for s in (3, 4)] == [D, D] and c.cursor is None
    # an inclusive replay of the frame at our cursor is a duplicate, and noted
    c = check(7, requested=7, fresh=True)
    assert c.admit(7, 100) is D and c.inclusive is True
    # no jump bound (Jetstream v1 time_us): any increase is accepted
    c = check(10)
    assert c.admit(10**15, None) is A


async def test_byte_queue_holds_the_socket_back_and_admits_one_huge_frame() -> None:
    q = ByteQueue(100)
    await q.put(b"x" * 60)
    blocked = asyncio.create_task(q.put(b"y" * 60))
    await asyncio.sleep(0.05)
    assert not blocked.done() and q.held == 60  # over budget: the reader waits
    first = await q.get()
    await asyncio.sleep(0.05)
    assert not blocked.done()  # taken but not committed still counts
    await q.done([first])
    await asyncio.wait_for(blocked, 1)
    await q.done([await q.get()])
    await asyncio.wait_for(q.put(b"z" * 1000), 1)  # bigger than the budget: alone, it goes in
    assert q.held == 1000
    small = asyncio.create_task(q.put(b"s"))
    await asyncio.sleep(0.05)
    assert not small.done()
    await q.done([await q.get()])
    await asyncio.wait_for(small, 1)


@given(st.one_of(st.none(), st.integers(1, 2**63 - 1)),
       st.lists(st.one_of(st.integers(1, 2**63 - 1), st.integers(1, 1000)), max_size=50))
def test_mid_connection_the_cursor_never_goes_back(start: int | None, seqs: list[int]) -> None:
    c = check(start)
    last = start
    for seq in seqs:
        verdict = c.admit(seq, 10**9)
        if verdict is A:
            assert last is None or seq > last
            last = seq
        assert c.last == last
