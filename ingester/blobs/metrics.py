"""Prometheus metrics of the blob mirror and the playability checker."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

MIRRORED = Counter("blob_mirrored_total", "Blobs copied into the store after a CID match", ["store"])
MIRRORED_BYTES = Counter("blob_mirrored_bytes_total", "Bytes copied into the store")
FAILURES = Counter("blob_mirror_failures_total", "Mirror attempts that failed", ["reason"])
RELEASED = Counter("blob_released_total", "Blobs removed from the store: no live track references them")
BLOBS = Gauge("blob_state", "Blobs by mirror state", ["state"])
PLAYABILITY = Gauge("tracks_playability", "Tracks by playability state", ["state"])
CHECKS = Counter("playability_checks_total", "Sources re-verified by the checker", ["source", "result"])
