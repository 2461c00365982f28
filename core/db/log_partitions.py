"""The log's partitions and its dedup key (migration 0016), beside `core.db.schema` (at its size cap).

`record_event` is partitioned by seq range. A unique index of a partitioned table must contain the
partition key, so the dedup key lives in `record_event_key`: one row per appended record event, never
partitioned and never trimmed (a replay of an event whose partition retention dropped is still a
duplicate); a TRUNCATE of `record_event` empties it too (a trigger). The view `log_partition` (name, lo, hi)
lists the partitions, [lo, hi) each, from the catalog; `record_event_ensure_partitions(upto)` (a database
function, so that the migration and the ingester make them the same way) creates the missing ones until
the highest bound is more than half a partition above `upto`. Views are not tables: not in this metadata.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, PrimaryKeyConstraint, Table, Text

from core.db import schema

record_event_key = Table(
    "record_event_key",
    schema.metadata,
    Column("did", Text, nullable=False),
    Column("collection", Text, nullable=False),
    Column("rkey", Text, nullable=False),
    Column("rev", Text, nullable=False),
    Column("action", Text, nullable=False),
    # Split by `verified`, so that an unverified copy (e.g. Jetstream) never blocks the verified one.
    Column("verified", Boolean, nullable=False),
    Column("seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("did", "collection", "rkey", "rev", "action", "verified", name="record_event_key_pkey"),
)
