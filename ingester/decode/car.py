"""CAR v1 reader for firehose `blocks` slices and getRepo bodies.

Blocks stay raw bytes: the decode stage only needs the commit block and the in-scope record blocks, so
decoding every MST node (as `libipld.decode_car` does) would be wasted work on the hot path.
"""

from __future__ import annotations

import libipld

from ingester.decode.cbor_scan import scan

__all__ = ["CarError", "read_car"]

# CIDv1 + codec (1-byte varint) + sha2-256 + 32-byte digest: every block atproto writes has this shape,
# so it gets a fast path that skips the generic varint walk.
_SHA256 = 0x12
_CIDV1_SHA256_LEN = 36
# CIDv0 is a bare sha2-256 multihash (0x12 0x20 + digest); tolerated in CARs, never produced by atproto.
_CIDV0_LEN = 34
HEADER_MAX_ITEMS = 1_000  # {version, roots: [cid]}: a handful of items
_MAX_VARINT_BYTES = 9  # enough for any length a 5 MiB frame can hold; longer means garbage


class CarError(ValueError):
    """The bytes are not a well-formed CAR v1."""


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Unsigned LEB128 at `pos`; returns (value, next position)."""
    if pos >= end:
        raise CarError(f"truncated varint at offset {pos}")
    b = buf[pos]
    if b < 0x80:  # single byte: by far the common case (codecs, digest lengths, small sections)
        return b, pos + 1
    value = b & 0x7F
    shift = 7
    start = pos
    pos += 1
    while True:
        if pos >= end:
            raise CarError(f"truncated varint at offset {start}")
        if pos - start >= _MAX_VARINT_BYTES:
            raise CarError(f"varint too long at offset {start}")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _cid_end(buf: bytes, pos: int, end: int) -> int:
    """Return the offset just past the binary CID starting at `pos` (CIDv1, or a CIDv0 multihash)."""
    if (
        pos + _CIDV1_SHA256_LEN <= end
        and buf[pos] == 1
        and buf[pos + 1] < 0x80
        and buf[pos + 2] == _SHA256
        and buf[pos + 3] == 0x20
    ):
        return pos + _CIDV1_SHA256_LEN
    if pos + 1 < end and buf[pos] == _SHA256 and buf[pos + 1] == 0x20:
        if pos + _CIDV0_LEN > end:
            raise CarError(f"truncated CIDv0 at offset {pos}")
        return pos + _CIDV0_LEN
    version, p = _varint(buf, pos, end)
    if version != 1:
        raise CarError(f"unsupported CID version {version} at offset {pos}")
    _codec, p = _varint(buf, p, end)
    _mh_code, p = _varint(buf, p, end)
    digest_len, p = _varint(buf, p, end)
    p += digest_len
    if p > end:
        raise CarError(f"truncated CID at offset {pos}")
    return p


def _read_header(buf: bytes, end: int) -> tuple[list[bytes], int]:
    hlen, pos = _varint(buf, 0, end)
    if hlen == 0 or pos + hlen > end:
        raise CarError(f"CAR header length {hlen} does not fit in {end} bytes")
    try:
        # Its shape is checked below: a header too short to pass the item limit is not walked (`cbor_scan`).
        scan(buf[pos : pos + hlen], max_items=HEADER_MAX_ITEMS, max_depth=4, shaped=True)
        header = libipld.decode_dag_cbor(buf[pos : pos + hlen])
    except Exception as e:  # CborLimit; libipld raises ValueError, and RecursionError on deep nesting
        raise CarError(f"CAR header is not DAG-CBOR: {e}") from e
    if not isinstance(header, dict):
        raise CarError("CAR header is not a map")
    version = header.get("version")
    if type(version) is not int or version != 1:
        raise CarError(f"unsupported CAR version {version!r}")
    roots = header.get("roots")
    if not isinstance(roots, list) or not all(isinstance(r, bytes) for r in roots):
        raise CarError("CAR header roots must be a list of CID links")
    return roots, pos + hlen


def read_car(data: bytes) -> tuple[list[bytes], dict[bytes, bytes]]:
    """Parse a CAR v1 into (roots, {raw CID bytes: raw block bytes}).

    Raw CID bytes are the binary CID without the multibase 0x00 prefix, i.e. exactly what
    `libipld.decode_dag_cbor` yields for a tag-42 link, so frame fields can index the dict directly.
    Block contents are not checked against their CIDs here; callers hash the blocks they use.
    """
    if not isinstance(data, bytes):
        if not isinstance(data, bytearray | memoryview):
            raise CarError(f"CAR must be bytes, got {type(data).__name__}")
        data = bytes(data)
    end = len(data)
    roots, pos = _read_header(data, end)
    blocks: dict[bytes, bytes] = {}
    while pos < end:
        # Inlined fast paths (1- and 2-byte section varints -- MST nodes are 128+ bytes --, CIDv1 sha2-256):
        # function calls dominate this loop.
        section_len = data[pos]
        if section_len < 0x80:
            pos += 1
        elif pos + 1 < end and data[pos + 1] < 0x80:
            section_len = (section_len & 0x7F) | (data[pos + 1] << 7)
            pos += 2
        else:
            section_len, pos = _varint(data, pos, end)
        section_end = pos + section_len
        if section_end > end:
            raise CarError(f"truncated CAR section at offset {pos}: needs {section_len} bytes")
        if (
            pos + _CIDV1_SHA256_LEN <= section_end  # first: also guards the indexing below
            and data[pos] == 1
            and data[pos + 2] == _SHA256
            and data[pos + 3] == 0x20
            and data[pos + 1] < 0x80
        ):
            cid_end = pos + _CIDV1_SHA256_LEN
        else:
            cid_end = _cid_end(data, pos, section_end)
        # bytes slicing copies, but blocks are small and callers need real bytes (hashing, dict keys)
        blocks[data[pos:cid_end]] = data[cid_end:section_end]
        pos = section_end
    return roots, blocks
