"""Process-wide settings of the ingester, applied by its composition root."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Fewer cyclic-GC passes: ingest allocates millions of short-lived, acyclic tuples and dicts.

    With the default gen-0 threshold (700) the collector runs every few frames and walks every live
    object; measured on the projector, that was ~20 % of its Python time. Objects alive after
    start-up (modules, lexicons, caches) are frozen out of collection altogether.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
