"""`com.atproto.label.subscribeLabels` frame → `#labels` / `#info` / error (same framing as the firehose).

Only the envelope is checked here; each label's shape is the validate stage's job and its signature
the verify stage's, so that one bad label in a frame is logged and rejected alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import libipld

from core.events import ErrorFrame, InfoFrame

MAX_LABELS_PER_FRAME = 10_000


class LabelFrameError(ValueError):
    """The frame is malformed; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class LabelsFrame:
    seq: int
    labels: tuple[Any, ...]  # each as decoded from DAG-CBOR (sig is bytes); shape not yet checked


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """A message type we do not know (spec: ignore it)."""

    t: str | None


LabelFrame = LabelsFrame | InfoFrame | ErrorFrame | UnknownFrame


def decode_label_frame(frame: bytes) -> LabelFrame:
    """Decode one websocket message. Raises LabelFrameError (and nothing else) on malformed input."""
    try:
        parts = libipld.decode_dag_cbor_multi(frame)
    except Exception as e:  # ValueError on bad CBOR, RecursionError on deep nesting, TypeError on non-bytes
        raise LabelFrameError(f"frame is not DAG-CBOR: {e}") from e
    if len(parts) != 2:
        raise LabelFrameError(f"frame must hold 2 DAG-CBOR objects (header, body), got {len(parts)}")
    header, body = parts
    if type(header) is not dict or type(body) is not dict:
        raise LabelFrameError("frame header and body must be maps")
    op, t = header.get("op"), header.get("t")
    if type(op) is not int:
        raise LabelFrameError(f"header op must be an integer, got {op!r}")
    if op == -1:
        return ErrorFrame(error=_str(body, "error"), message=_opt_str(body, "message"))
    if op != 1:
        return UnknownFrame(None)
    if t == "#labels":
        seq = body.get("seq")
        if type(seq) is not int or seq < 0:
            raise LabelFrameError(f"seq must be a non-negative integer, got {seq!r}")
        labels = body.get("labels")
        if type(labels) is not list:
            raise LabelFrameError(f"labels must be a list, got {type(labels).__name__}")
        if len(labels) > MAX_LABELS_PER_FRAME:
            raise LabelFrameError(f"{len(labels)} labels in one frame, over the {MAX_LABELS_PER_FRAME} limit")
        return LabelsFrame(seq, tuple(labels))
    if t == "#info":
        return InfoFrame(name=_str(body, "name"), message=_opt_str(body, "message"))
    return UnknownFrame(t if type(t) is str else None)


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if type(value) is not str:
        raise LabelFrameError(f"{key} must be a string, got {value!r}")
    return value.replace("\x00", "")


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    return None if body.get(key) is None else _str(body, key)
