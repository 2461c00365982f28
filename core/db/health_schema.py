"""Operational tables on the schema's metadata: the ingester's component heartbeats, the log's retention floor.

Kept beside `core.db.schema` (which imports this module, so the migrations see the table) to keep that
module within its size cap.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, DateTime, Table, Text, text
from sqlalchemy.dialects.postgresql import JSONB

from core.db import schema

# Liveness of the ingester's long-running components (sources, projector, workers), upserted by the
# ingester every few seconds and read by the API's /health and /ready, so the two processes may run on
# different machines. Timestamps are the database's clock (never the writer's); `since` is when `state`
# last changed. Not part of the log: a heartbeat, rewritten in place.
component_health = Table(
    "component_health",
    schema.metadata,
    Column("component", Text, primary_key=True),  # e.g. firehose:bsky.network, projector, blob-mirror
    Column("kind", Text, nullable=False),  # source | projector | worker
    Column("state", Text, nullable=False),  # starting | up | connecting | restarting | stopped
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("since", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

# How far retention has dropped the log: every event with seq > dropped_through is kept. A job
# that drops old log rows (partitions) raises this in the same transaction, so that a consumer's
# cursor below it gets `OutdatedCursor` instead of a silent jump. One row, 0 = nothing dropped.
# `partition_size`: seq span of each new record_event partition (LOG_PARTITION_SIZE, set by the ingester).
log_retention = Table(
    "log_retention",
    schema.metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("dropped_through", BigInteger, nullable=False),
    Column("partition_size", BigInteger, nullable=False, server_default=text("10000000")),
    CheckConstraint("partition_size > 0"),
    CheckConstraint("singleton", name="log_retention_singleton"),
)
