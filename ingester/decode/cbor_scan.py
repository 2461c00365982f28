"""A pre-scan of (DAG-)CBOR that bounds the work of decoding it, before libipld or cbor2 build anything.

Decoding costs per item, not per byte: 4.9 MB of empty maps is ~5 million objects and took 6.8 s to
decode. This walk reads only item heads, jumps over byte and text strings (a frame's CAR and a record's
strings cost nothing) and stops as soon as the item count or the nesting depth passes its limit, so an
absurd structure is refused after at most `limit` cheap steps (milliseconds). It is not a validator:
on anything malformed (truncation, indefinite lengths, reserved values) it stops quietly and lets the
real decoder give its precise error.

An `ItemBudget` is shared by every block of one frame (envelope, commit, MST nodes, records), so many
blocks each under its own limit still cannot add up to an expensive frame. Its `unscanned` allowance lets the
first small blocks of a frame through without the walk (every item takes at least one byte, so such a block
holds no more items than bytes): the walk is pure Python and cost a genuine commit 2.5× its decode, while the
allowance adds at most its size in items to what a frame may decode.
"""

from __future__ import annotations

__all__ = ["CborLimit", "ItemBudget", "scan"]


class CborLimit(ValueError):
    """The CBOR has more items, deeper nesting or more top-level objects than allowed."""


class ItemBudget:
    """Items still allowed for the rest of one frame's decoding; `unscanned`: bytes of blocks still allowed to
    skip the walk (each no longer than its item limit, nor than its depth limit unless `shaped`)."""

    __slots__ = ("remaining", "unscanned")

    def __init__(self, items: int, unscanned: int = 0) -> None:
        self.remaining = items
        self.unscanned = unscanned


def scan(data: bytes, *, max_items: int, max_depth: int, max_objects: int = 1,
         budget: ItemBudget | None = None, shaped: bool = False) -> int:
    """Count the items of `data` (concatenated top-level objects allowed up to `max_objects`); raise
    CborLimit past `max_items` (or the budget's remainder), `max_depth` or `max_objects`. Returns the count
    and charges it to `budget`. A block too short to pass the limits is not walked (without a budget, or while
    the budget's `unscanned` allowance covers it): its length (a bound on its items) is returned. `shaped`: the
    caller checks the decoded structure's shape itself, so nesting depth does not matter for such a block (only
    its item count bounds what decoding it costs)."""
    size = len(data)
    if size <= max_items and (shaped or size <= max_depth):
        if budget is None:
            return size
        if size <= budget.unscanned:
            budget.unscanned -= size
            return size
    limit = max_items if budget is None else min(max_items, budget.remaining)
    end = size
    pos = items = objects = 0
    open_: list[int] = []  # children still expected by each open array/map/tag
    while pos < end:
        if not open_:
            objects += 1
            if objects > max_objects:
                raise CborLimit(f"more than {max_objects} top-level CBOR objects")
        head = data[pos]
        major, info = head >> 5, head & 0x1F
        pos += 1
        if info < 24:
            arg = info
        elif info <= 27:
            width = 1 << (info - 24)
            if pos + width > end:
                break
            arg = int.from_bytes(data[pos:pos + width], "big")
            pos += width
        else:
            break  # indefinite length or reserved: not DAG-CBOR, the decoder says so
        items += 1
        if items > limit:
            what = "items" if limit == max_items else "items (frame budget)"
            raise CborLimit(f"more than {limit} CBOR {what}")
        if major == 2 or major == 3:
            pos += arg
            children = 0
        elif major == 4:
            children = arg
        elif major == 5:
            children = 2 * arg
        elif major == 6:
            children = 1
        else:
            children = 0
        if children:
            open_.append(children)
            if len(open_) > max_depth:
                raise CborLimit(f"CBOR nested deeper than {max_depth}")
            continue
        while open_:
            open_[-1] -= 1
            if open_[-1]:
                break
            open_.pop()
    if budget is not None:
        budget.remaining -= items
    return items
