"""`frame_reject`: frames the ingester set aside (README "Isolation"), kept for forensics, never projected.

Part of `core.db.schema.metadata` (registered from there); its own module only because schema.py is at the
500-line cap. Grows with what hostile hosts send: prune by `received_at` when it matters.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, LargeBinary, Table, Text, text

from core.db.schema import metadata

frame_reject = Table(
    "frame_reject",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("source", Text, nullable=False),
    Column("source_seq", BigInteger),  # when the frame's seq could be read and was in range
    Column("reason_kind", Text, nullable=False),  # the ingest_rejects_total label
    Column("reason", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", LargeBinary),  # null when the bytes were never read (too big for the socket)
    Column("prefix", LargeBinary),  # the first 256 bytes
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)
Index("frame_reject_received_at", frame_reject.c.received_at)
