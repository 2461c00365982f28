"""`/metrics`: this process's registry, or, with several API workers, every worker's metrics at once.

With `PROMETHEUS_MULTIPROC_DIR` set (the CLI sets it for `--workers N` > 1), prometheus-client writes each
worker's values to files there and a scrape, which reaches one worker, aggregates all of them: counters and
histograms summed, gauges as their `multiprocess_mode` says. `process_*`/`python_*` are per-process and are not
reported in that mode.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition; `extra`: collectors outside the shared files (the ingester child's metrics)."""
    if not multiprocess_mode():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)
