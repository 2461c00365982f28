"""The Postgres schema: the only contract between the ingester (writes) and the appview (reads).

Log tables (`record_event`, `repo_event`) are append-only and share one sequence, so that
`seq` is a single total order over everything we observed. Projection tables are a pure
function of the log; `PROJECTION_TABLES` lists them in digest order.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Sequence,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# One sequence for both log tables: log order is a single total order.
event_seq = Sequence("event_seq", metadata=metadata)

record_event = Table(
    "record_event",
    metadata,
    Column("seq", BigInteger, event_seq, server_default=event_seq.next_value(), primary_key=True),
    Column("did", Text, nullable=False),
    Column("collection", Text, nullable=False),
    Column("rkey", Text, nullable=False),
    Column("rev", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("cid", Text),
    Column("record", JSONB),
    Column("source", Text, nullable=False),
    Column("source_seq", BigInteger),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("verified", Boolean, nullable=False),
    Column("rejected", Text),
)
# The dedup key of the architecture, split by `verified` so that an unverified copy (e.g. from
# Jetstream) can never block the verified copy of the same write from being logged.
Index(
    "record_event_dedup_verified",
    record_event.c.did, record_event.c.collection, record_event.c.rkey, record_event.c.rev,
    record_event.c.action,
    unique=True,
    postgresql_where=record_event.c.verified,
)
Index(
    "record_event_dedup_unverified",
    record_event.c.did, record_event.c.collection, record_event.c.rkey, record_event.c.rev,
    record_event.c.action,
    unique=True,
    postgresql_where=~record_event.c.verified,
)
Index("record_event_did_seq", record_event.c.did, record_event.c.seq)

repo_event = Table(
    "repo_event",
    metadata,
    Column("seq", BigInteger, event_seq, server_default=event_seq.next_value(), primary_key=True),
    Column("did", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("rev", Text),
    Column("payload", JSONB, nullable=False),
    Column("source", Text, nullable=False),
    Column("source_seq", BigInteger),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)
# A frame replayed by the same source after a reconnect is one row.
Index(
    "repo_event_dedup",
    repo_event.c.source, repo_event.c.source_seq, repo_event.c.kind, repo_event.c.did,
    unique=True,
    postgresql_where=repo_event.c.source_seq.isnot(None),
)
Index("repo_event_did_seq", repo_event.c.did, repo_event.c.seq)

# Committed position of each inbound source (relay/PDS host, jetstream, backfill).
source_cursor = Table(
    "source_cursor",
    metadata,
    Column("source", Text, primary_key=True),
    Column("cursor", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

# Ingest-side sync state per repo (chain position, desync flag). Written with each append.
repo_state = Table(
    "repo_state",
    metadata,
    Column("did", Text, primary_key=True),
    Column("rev", Text, nullable=False),
    Column("data_cid", Text),
    Column("sync_status", Text, nullable=False),  # synchronized | desynchronized
    Column("desync_reason", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)

# ---- projections -------------------------------------------------------------------------

projection_cursor = Table(
    "projection_cursor",
    metadata,
    Column("name", Text, primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# Per-record fold state: the rev guard and durable tombstones.
record_state = Table(
    "record_state",
    metadata,
    Column("did", Text, nullable=False),
    Column("collection", Text, nullable=False),
    Column("rkey", Text, nullable=False),
    Column("rev", Text, nullable=False),
    Column("cid", Text),
    Column("deleted", Boolean, nullable=False),
    Column("item_id", BigInteger),  # stable id: seq of the event that (re)created the record
    Column("seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("did", "collection", "rkey"),
)

actor = Table(
    "actor",
    metadata,
    Column("did", Text, primary_key=True),
    Column("handle", Text),
    Column("pds", Text),
    Column("signing_key", Text),
    Column("status", Text, nullable=False),  # active | deactivated | takendown | suspended | deleted | …
    Column("active", Boolean, nullable=False),
    # Highest record rev of the repo when its account was deleted: older events never come back.
    Column("purged_rev", Text),
    Column("seq", BigInteger, nullable=False),
)
Index("actor_handle", actor.c.handle)

track = Table(
    "track",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("uri", Text, nullable=False, unique=True),
    Column("did", Text, nullable=False),
    Column("rkey", Text, nullable=False),
    Column("cid", Text, nullable=False),
    Column("rev", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("artist", Text, nullable=False),
    Column("album", Text),
    Column("duration", BigInteger),
    Column("file_type", Text, nullable=False),
    Column("audio_url", Text),
    Column("audio_blob_cid", Text),
    Column("audio_blob_mime", Text),
    Column("audio_blob_size", BigInteger),
    Column("image_url", Text),
    Column("description", Text),
    Column("features", JSONB, nullable=False),
    Column("support_gate", JSONB),
    Column("self_labels", JSONB, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
    Column("record", JSONB, nullable=False),
)
Index("track_did_id", track.c.did, track.c.id)
Index("track_album", track.c.did, track.c.album)
Index("track_audio_blob", track.c.audio_blob_cid)

like = Table(
    "like",
    metadata,
    Column("uri", Text, primary_key=True),
    Column("did", Text, nullable=False),
    Column("rkey", Text, nullable=False),
    Column("cid", Text, nullable=False),
    Column("subject_uri", Text, nullable=False),
    Column("subject_cid", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
)
Index("like_subject", like.c.subject_uri)
Index("like_did", like.c.did)

comment = Table(
    "comment",
    metadata,
    Column("uri", Text, primary_key=True),
    Column("did", Text, nullable=False),
    Column("rkey", Text, nullable=False),
    Column("cid", Text, nullable=False),
    Column("subject_uri", Text, nullable=False),
    Column("subject_cid", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
)
Index("comment_subject", comment.c.subject_uri, comment.c.timestamp_ms)
Index("comment_did", comment.c.did)

list_ = Table(
    "list",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("uri", Text, nullable=False, unique=True),
    Column("did", Text, nullable=False),
    Column("rkey", Text, nullable=False),
    Column("cid", Text, nullable=False),
    Column("name", Text),
    Column("list_type", Text),
    Column("item_count", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
)
Index("list_did_type", list_.c.did, list_.c.list_type)

list_item = Table(
    "list_item",
    metadata,
    Column("list_uri", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Column("subject_uri", Text, nullable=False),
    Column("subject_cid", Text, nullable=False),
    PrimaryKeyConstraint("list_uri", "position"),
)
Index("list_item_subject", list_item.c.subject_uri)

artist_profile = Table(
    "artist_profile",
    metadata,
    Column("did", Text, primary_key=True),
    Column("uri", Text, nullable=False),
    Column("cid", Text, nullable=False),
    Column("bio", Text),
    Column("avatar", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
)

# ---- outbound stream (appview/stream) -------------------------------------------------------

# How far retention has dropped the log: every event with seq > dropped_through is kept. A job
# that drops old log rows (partitions) raises this in the same transaction, so that a consumer's
# cursor below it gets `OutdatedCursor` instead of a silent jump. One row, 0 = nothing dropped.
# Record history reads need no index of their own: they read the two partial dedup indexes
# (did, collection, rkey, …) with one query per `verified` branch.
log_retention = Table(
    "log_retention",
    metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    Column("dropped_through", BigInteger, nullable=False),
    CheckConstraint("singleton", name="log_retention_singleton"),
)

# Digest order; each entry also names the columns that are log coordinates (seq-derived ids,
# arrival times). Those are identical on a rebuild of the same log but legitimately differ when
# the same writes arrive in another interleaving, so the "content" digest leaves them out.
PROJECTION_TABLES: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (actor, ("seq",)),
    (record_state, ("item_id", "seq")),
    (track, ("id", "indexed_at")),
    (like, ("indexed_at",)),
    (comment, ("indexed_at",)),
    (list_, ("id", "indexed_at")),
    (list_item, ()),
    (artist_profile, ("indexed_at",)),
)
