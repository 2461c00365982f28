"""Prometheus metrics of the write side (exposed on the API's /metrics in-process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

FRAMES = Counter("ingest_frames_total", "Frames received", ["source", "kind"])
FRAME_ERRORS = Counter("ingest_frame_errors_total", "Frames that failed to decode", ["source"])
APPENDED = Counter("ingest_log_rows_total", "Rows appended to the log", ["table"])
DUPLICATES = Counter("ingest_duplicates_total", "Events already in the log (dedup key)")
REJECTED = Counter("ingest_rejected_total", "Records rejected by validation", ["reason"])
FORGED = Counter(
    "ingest_forged_commits_total", "Commits rejected: bad signature after a DID refresh, or ops not in the signed MST"
)
UNVERIFIED = Counter("ingest_unverified_total", "Commits we could not verify (DID unresolved)")
DESYNC = Counter("ingest_desync_total", "Repos marked desynchronized", ["reason"])
RECONNECTS = Counter("ingest_reconnects_total", "Source reconnects", ["source"])
SOURCE_CURSOR = Gauge("ingest_source_cursor", "Committed cursor per source", ["source"])
INGEST_LAG = Gauge("ingest_lag_seconds", "Now minus the event time of the last committed frame", ["source"])
PROJECTED = Counter("projection_events_total", "Record events applied to projections")
SKIPPED = Counter("projection_skipped_total", "Record events not projected", ["reason"])
REDONE = Counter("projection_steps_redone_total",
                 "Projector steps redone with every write an upsert: a record taken for new had a row already")
PROJECTOR_POSITION = Gauge("projection_position", "Log position of the projector", ["name"])
RESYNC_QUEUED = Counter("backfill_queued_total", "Repos queued for backfill or resync")
RESYNCS = Counter("backfill_repos_total", "Repos backfilled or resynced, by outcome", ["outcome"])
LABELS = Counter("ingest_labels_total", "Labels received, by outcome", ["source", "outcome"])
# Supervision (ingester/supervisor.py).
TASK_RESTARTS = Counter("ingester_task_restarts_total", "Long-running tasks restarted after dying", ["component"])
COMPONENT_UP = Gauge("ingester_component_up", "1 while a component runs and reports up (a source: connected)",
                     ["component"])
HEARTBEATS = Counter("ingester_heartbeats_total", "Component-health heartbeats written, by outcome", ["outcome"])
REJECTS = Counter("ingest_rejects_total", "Frames set aside as rejects (kept in frame_reject)", ["reason"])
SEQ_ANOMALIES = Counter("ingest_seq_anomalies_total", "Frames whose seq was a duplicate, jump, outlier or reset",
                        ["source", "kind"])
QUEUE_BYTES = Gauge("ingest_queue_bytes", "Bytes received and not yet committed, per source", ["source"])
DUPLICATE_FRAMES = Counter("ingest_duplicate_frames_total", "Frames dropped: seq not above the last accepted one",
                           ["source"])
# Authority and per-repo scheduling (README "What we trust from whom").
UNAUTHORISED = Counter("ingest_unauthorised_total",
                       "#account/#identity/#sync from a directly followed PDS that does not host the DID",
                       ["kind", "reason"])
SYNC_REFUSED = Counter("ingest_sync_refused_total", "#sync frames that may not move a rev", ["reason"])
PARKED = Gauge("ingest_parked_frames", "Frames parked until their DID's identity is resolved", ["source"])
PARKED_DROPPED = Counter("ingest_parked_dropped_total", "Parked frames dropped for a resync (bounds)", ["source"])
# Leadership (ingester/leadership.py): one instance leads, the others stand by.
LEADER = Gauge("ingester_leader", "1 while this ingester instance holds the lease (leads), else 0")
ROLE = Gauge("ingester_role", "1 for this instance's current role (leader, standby), 0 for the others",
             ["instance", "role"])
LEADER_EPOCH = Gauge("ingester_leader_epoch", "The lease epoch this instance leads with (0 on standby)")
LEADERSHIP = Counter("ingester_leadership_changes_total", "Leadership transitions of this instance", ["event"])
FENCED = Counter("ingester_fenced_writes_total", "Write transactions refused: this instance's epoch was over")
