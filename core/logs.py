"""structlog configuration shared by both processes: JSON in production, readable in a terminal."""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any, Literal

import structlog

LogFormat = Literal["auto", "json", "console"]

# Fields that differ between repeats of the same complaint (a backoff delay, an attempt counter): not part of
# what makes two warnings "the same".
_VOLATILE = frozenset({"timestamp", "in_s", "retry_in_s", "delay", "delay_s", "attempt", "attempts", "took_s"})


class RepeatFilter:
    """Lets the first of identical warnings/errors through, then at most one per `window_s`, carrying how many
    were held back (`repeated`). Offline, a dead labeler or relay would otherwise log the same line forever."""

    def __init__(self, window_s: float = 60.0, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self.max_keys, self.clock = window_s, max_keys, clock
        self.seen: OrderedDict[tuple[Any, ...], tuple[float, int]] = OrderedDict()  # key → (last emitted, held)

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if method not in ("warning", "error", "exception"):
            return event
        key = (method, *sorted((k, repr(v)[:200]) for k, v in event.items() if k not in _VOLATILE))
        now = self.clock()
        last = self.seen.get(key)
        if last is not None and now - last[0] < self.window_s:
            self.seen[key] = (last[0], last[1] + 1)
            raise structlog.DropEvent
        if last is not None and last[1]:
            event["repeated"] = last[1]
        self.seen[key] = (now, 0)
        self.seen.move_to_end(key)
        while len(self.seen) > self.max_keys:
            self.seen.popitem(last=False)
        return event


def configure_logging(fmt: LogFormat = "auto", level: str = "info") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=True)
    )
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            RepeatFilter(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
