"""Ingester leadership: the lease one `appview ingest` holds to write the log, and every instance's role.

Part of `core.db.schema.metadata` (registered from there); its own module because schema.py is at its
500-line cap. The ingester writes both tables (ingester/leadership.py), the API only reads them (/status).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, Table, Text, text

from core.db.schema import metadata

# One row per lease (`ingest`). `epoch` grows by one at every takeover: it is the fencing token every append
# transaction compares under a row lock, so an old leader (paused, partitioned) can never write after a
# takeover. Times are the database's clock, so the ingesters' clocks never matter.
ingest_lease = Table(
    "ingest_lease",
    metadata,
    Column("name", Text, primary_key=True),
    Column("epoch", BigInteger, nullable=False, server_default=text("0")),
    Column("holder", Text),  # the leading instance, NULL once released
    Column("acquired_at", DateTime(timezone=True)),
    Column("renewed_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True), nullable=False, server_default=text("'-infinity'")),
)

# Every ingester instance's role, upserted at each lease renewal / standby poll (read by /status).
ingest_instance = Table(
    "ingest_instance",
    metadata,
    Column("instance", Text, primary_key=True),  # host:pid:nonce
    Column("role", Text, nullable=False),  # leader | standby | stopped
    Column("epoch", BigInteger),  # the leader's epoch
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("seen_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)
