"""Process-wide settings, applied by each process's composition root (`cli`): the ingester's and the API's."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Fewer cyclic-GC passes: ingest, and every API request, allocate many short-lived, acyclic tuples and dicts.

    With the default gen-0 threshold (700) the collector runs every few frames and walks every live
    object; measured on the projector, that was ~20 % of its Python time, and in the API the pauses were
    its slowest requests (`read.py`, 16 connections: track detail p99 82 → 29 ms, feed page p99 90 → 61 ms).
    Objects alive after start-up (modules, lexicons, caches, the app) are frozen out of collection altogether.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
