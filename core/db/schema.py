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
    Computed,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Sequence,
    Table,
    Text,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

from core.db.bsky_schema import bsky_profile_table
from core.db.counters import counter_tables, hide_label_index

metadata: MetaData = MetaData()

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
    # Partitioned by seq range (migration 0016, core/db/log_partitions.py); the dedup key lives in
    # record_event_key, since a unique index of a partitioned table must contain the partition key.
    postgresql_partition_by="RANGE (seq)",
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
    # The feed order (Bluesky's sortAt): the earlier of the claimed createdAt and first sight.
    Column("sort_at", DateTime(timezone=True), nullable=False),
)
Index("track_did_id", track.c.did, track.c.id)
Index("track_sort", track.c.sort_at.desc(), track.c.id.desc())
Index("track_did_sort", track.c.did, track.c.sort_at.desc(), track.c.id.desc())
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
    Column("sort_at", DateTime(timezone=True), nullable=False),
)
Index("like_subject", like.c.subject_uri, like.c.did)
Index("like_did_sort", like.c.did, like.c.sort_at.desc())
Index("like_sort", like.c.sort_at.desc())

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
    Column("sort_at", DateTime(timezone=True), nullable=False),
    Column("id", BigInteger, nullable=False),  # stable id: seq of the creating event
)
Index("comment_subject", comment.c.subject_uri, comment.c.timestamp_ms)
Index("comment_did", comment.c.did)
Index("comment_sort", comment.c.sort_at.desc())
Index("comment_id", comment.c.id)

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
    Column("sort_at", DateTime(timezone=True), nullable=False),
)
Index("list_did_type", list_.c.did, list_.c.list_type)
Index("list_sort", list_.c.sort_at.desc())

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

# Likes (distinct likers) and comments per subject URI, from active accounts: derived from `like`,
# `comment` and `actor` in the projector's transaction (ingester/projection/counts.py).
subject_count = Table(
    "subject_count",
    metadata,
    Column("subject_uri", Text, primary_key=True),
    Column("like_count", BigInteger, nullable=False),
    Column("comment_count", BigInteger, nullable=False),
)
Index("subject_count_likes", subject_count.c.like_count.desc(), subject_count.c.subject_uri)

# ---- blob mirror and playability (operational state, not projections) ----------------------
# Written by the mirror and the checker from what they observe on the network, so they are not a
# function of the log and stay out of PROJECTION_TABLES (and out of rebuilds and digests).

# One row per audio blob CID any track has referenced. state: pending | mirrored | failed (reason) |
# gone (the PDS says it no longer has it) | released (no track references it; removed from the store).
blob = Table(
    "blob",
    metadata,
    Column("cid", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("reason", Text),
    Column("size", BigInteger),
    Column("mime", Text),
    Column("store", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("mirrored_at", DateTime(timezone=True)),
    Column("checked_at", DateTime(timezone=True)),
    Column("unreferenced_since", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)
Index("blob_due", blob.c.state, blob.c.next_attempt_at)

# Last reachability check of an audioUrl (the checker's sample).
audio_url_check = Table(
    "audio_url_check",
    metadata,
    Column("url", Text, primary_key=True),
    Column("ok", Boolean, nullable=False),
    Column("status", Integer),
    Column("reason", Text),
    Column("checked_at", DateTime(timezone=True), nullable=False),
)

# /audio/<plyr file id>: plyr's own id inside its audio URLs (https://audio.plyr.fm/audio/<id>.<ext>).
PLYR_FILE_ID_REGEX = "/audio/([0-9a-f]{8,64})(?:\\.[A-Za-z0-9]{1,8})?(?:[?#]|$)"
Index("track_plyr_file_id", func.substring(track.c.audio_url, literal_column(f"'{PLYR_FILE_ID_REGEX}'")))

# ---- backfill and resync (issue #6) -------------------------------------------------------

# One row per repo to (re)fetch with getRepo: discovery inserts `pending` rows (a `done` row is skipped
# unless forced), a desynchronized repo resets its row to `pending`. `running` after a crash = pending.
backfill_job = Table(
    "backfill_job",
    metadata,
    Column("did", Text, primary_key=True),
    Column("status", Text, nullable=False),  # pending | running | done | failed
    Column("reason", Text, nullable=False),  # why it was enqueued (discovery source, desync reason)
    Column("error", Text),  # why the last attempt failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("pds", Text),
    Column("rev", Text),  # rev of the last snapshot applied
    Column("records", Integer),  # in-scope records in that snapshot
    Column("changes", Integer),  # events it wrote (creates + updates + deletes)
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)
Index("backfill_job_status", backfill_job.c.status, backfill_job.c.updated_at)
# ---- search support (migration 0003) -----------------------------------------------------
# Derived, STORED generated columns on the projection tables, so the projector writes nothing new
# and a rebuild (which creates tables from this metadata) recreates them. `public.search_norm` is
# the IMMUTABLE, schema-qualified normaliser created by migration 0003: unaccent, lower case, curly
# quotes straightened and apostrophes dropped, so "don’t", "don't" and "dont" compare equal.
# Nullable on purpose: the projector's staging tables are `LIKE <table>` and copy NOT NULL.
# One GIN index per searched expression (trigram or tsvector), never GiST (infra.md §4).
track.append_column(Column("search_title", Text, Computed("public.search_norm(title)", persisted=True)))
track.append_column(Column("search_artist", Text, Computed("public.search_norm(artist)", persisted=True)))
track.append_column(Column(
    "search_tsv", TSVECTOR, Computed("to_tsvector('simple'::regconfig, public.search_norm(title))", persisted=True)
))
list_.append_column(Column("search_name", Text, Computed("public.search_norm(name)", persisted=True)))
list_.append_column(Column(
    "search_tsv", TSVECTOR,
    Computed("to_tsvector('simple'::regconfig, coalesce(public.search_norm(name), ''))", persisted=True),
))
actor.append_column(Column("search_handle", Text, Computed("public.search_norm(handle)", persisted=True)))
Index("track_search_title_trgm", track.c.search_title, postgresql_using="gin",
      postgresql_ops={"search_title": "gin_trgm_ops"})
Index("track_search_artist_trgm", track.c.search_artist, postgresql_using="gin",
      postgresql_ops={"search_artist": "gin_trgm_ops"})
Index("track_search_tsv", track.c.search_tsv, postgresql_using="gin")
# Exact and prefix tiers of the most common words without visiting every match (newest first).
Index("track_search_title_btree", track.c.search_title, track.c.id,
      postgresql_ops={"search_title": "text_pattern_ops"})
Index("track_search_artist_btree", track.c.search_artist, track.c.did,
      postgresql_ops={"search_artist": "text_pattern_ops"})
Index("list_search_name_trgm", list_.c.search_name, postgresql_using="gin",
      postgresql_ops={"search_name": "gin_trgm_ops"})
Index("list_search_tsv", list_.c.search_tsv, postgresql_using="gin")
# "Not from an inactive account" as a hash anti-join over a handful of rows, not a scan of `actor`.
Index("actor_inactive", actor.c.did, postgresql_where=~actor.c.active)
Index("actor_search_handle_trgm", actor.c.search_handle, postgresql_using="gin",
      postgresql_ops={"search_handle": "gin_trgm_ops"})


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

# ---- outbound stream (appview/stream) -------------------------------------------------------

# Digest order; each entry also names the columns that are log coordinates (seq-derived ids,
# arrival times). Those are identical on a rebuild of the same log but legitimately differ when
# the same writes arrive in another interleaving, so the "content" digest leaves them out.
# `rev` is one too: a backfill learns a record from a repo snapshot, so it stamps the snapshot's rev, not
# the rev of the commit that last wrote the record (which only the live stream carries).
PROJECTION_TABLES: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (actor, ("seq",)),
    (record_state, ("item_id", "seq", "rev")),
    (track, ("id", "indexed_at", "sort_at", "rev")),
    (like, ("indexed_at", "sort_at")),
    (comment, ("indexed_at", "sort_at", "id")),
    (list_, ("id", "indexed_at", "sort_at")),
    (list_item, ()), (artist_profile, ("indexed_at",)), (bsky_profile := bsky_profile_table(metadata), ("indexed_at",)),
    (subject_count, ()),
    *((t, ()) for t in counter_tables(metadata)),
    (label, ("seq",)),
    (play, ("indexed_at",)),
    (actor_status, ("indexed_at",)),
)
from core.db import album_slugs, frame_reject, health_schema, log_partitions  # noqa: E402, F401, I001  (0008, 0009, 0014, 0016)
from core.db import leader_schema  # noqa: E402, F401, I001  (0015)
from core.db import audio_host  # noqa: E402, F401, I001  (0019)
hide_label_index(label)  # 0017
