"""The Postgres schema: the only contract between the ingester (writes) and the appview (reads).

Log tables (`record_event`, `repo_event`) are append-only and share one sequence, so that
`seq` is a single total order over everything we observed. Projection tables are a pure
function of the log; `PROJECTION_TABLES` lists them in digest order.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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

# ---- labels and teal.fm plays (issue #7 items 3-4) -------------------------------------------

# Log: one row per label received from a labeler (`com.atproto.label.subscribeLabels`), accepted or
# rejected, sharing `event_seq` with the other log tables so the log keeps one total order.
label_event = Table(
    "label_event",
    metadata,
    Column("seq", BigInteger, event_seq, server_default=event_seq.next_value(), primary_key=True),
    Column("src", Text),  # labeler DID as claimed by the label (null when missing or not a string)
    Column("uri", Text),
    Column("val", Text),
    Column("label", JSONB),  # the label as received, DAG-JSON shaped (`sig` as {"$bytes": …}); null if unstorable
    Column("digest", Text, nullable=False),  # sha256 of the label's DAG-CBOR (sig included): the dedup key
    Column("source", Text, nullable=False),
    Column("source_seq", BigInteger),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("verified", Boolean, nullable=False),  # signature checked against the labeler's #atproto_label key
    Column("rejected", Text),  # null, or why the label is not applied (bad signature, bad shape, …)
)
# The same signed label seen twice (reconnect replay, two sources) is one row. A forged copy has
# another signature, hence another digest, so it can never block the genuine label.
Index("label_event_dedup", label_event.c.digest, unique=True)
Index("label_event_uri", label_event.c.uri)

# Projection: the current state of each (src, uri, val). `neg` rows are kept as tombstones so an
# older label replayed later cannot resurrect a negated one; readers filter `NOT neg` and `exp`.
label = Table(
    "label",
    metadata,
    Column("src", Text, nullable=False),
    Column("uri", Text, nullable=False),
    Column("val", Text, nullable=False),
    Column("cid", Text),
    Column("neg", Boolean, nullable=False),
    Column("cts", DateTime(timezone=True), nullable=False),
    Column("exp", DateTime(timezone=True)),
    Column("seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("src", "uri", "val"),
)
Index("label_uri", label.c.uri)

# fm.teal.feed.play and fm.teal.alpha.feed.play (both field generations) → one row per play.
play = Table(
    "play",
    metadata,
    Column("uri", Text, primary_key=True),
    Column("did", Text, nullable=False),
    Column("collection", Text, nullable=False),
    Column("rkey", Text, nullable=False),
    Column("cid", Text, nullable=False),
    Column("track_name", Text, nullable=False),
    Column("artists", JSONB, nullable=False),  # artist names, in order
    Column("release_name", Text),
    Column("duration", BigInteger),
    Column("played_at", DateTime(timezone=True), nullable=False),  # playedTime, else first seen
    Column("origin_uri", Text),  # originUri or originUrl
    Column("music_service", Text),  # musicServiceUri or musicServiceBaseDomain
    Column("client_agent", Text),
    Column("isrc", Text),
    Column("recording_mbid", Text),
    Column("plyr_origin", Boolean, nullable=False),  # played on plyr.fm (service or origin host)
    Column("subject_uri", Text),  # an at://…/fm.plyr.track/… the play names explicitly
    Column("track_uri", Text),  # the linked plyr track, null when none or ambiguous
    Column("link", Text, nullable=False),  # uri | name | ambiguous | unmatched
    Column("indexed_at", DateTime(timezone=True), nullable=False),
)
Index("play_did_played", play.c.did, play.c.played_at)
Index("play_played", play.c.played_at)
Index("play_track", play.c.track_uri, postgresql_where=play.c.track_uri.isnot(None))
Index("play_subject", play.c.subject_uri, postgresql_where=play.c.subject_uri.isnot(None))
Index("play_track_name", play.c.track_name)
# Name matching looks tracks up by exact title.
Index("track_title", track.c.title)

# fm.teal.actor.status / fm.teal.alpha.actor.status (rkey self): now playing, with expiry.
actor_status = Table(
    "actor_status",
    metadata,
    Column("did", Text, nullable=False),
    Column("collection", Text, nullable=False),
    Column("uri", Text, nullable=False),
    Column("cid", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("expiry", DateTime(timezone=True), nullable=False),  # default: time + 10 min (lexicon)
    Column("track_name", Text, nullable=False),
    Column("artists", JSONB, nullable=False),
    Column("item", JSONB, nullable=False),
    Column("indexed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("did", "collection"),
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
    (label, ("seq",)),
    (play, ("indexed_at",)),
    (actor_status, ("indexed_at",)),
)
