"""Where a source starts reading: its committed cursor, else the configured start cursor
(`FIREHOSE_START_CURSOR`, `JETSTREAM_START_CURSOR`), unless the command line forces one (`appview ingest
--cursor N`, `--jetstream-cursor N`), which wins over the committed cursor, once per source and process: a
reconnect after that resumes from what was committed, as always. `0` asks the host for everything it retains.
No cursor at all means the live tip; until its first commit such a source resumes from just below the first frame
it received (`FirehoseSource.floor`), across reconnects and restarts of its component.
"""

from __future__ import annotations

from typing import Literal

import structlog

log = structlog.get_logger(__name__)

Kind = Literal["firehose", "jetstream"]


class StartCursors:
    def __init__(self, *, firehose: int | None = None, jetstream: int | None = None) -> None:
        self.configured: dict[Kind, int | None] = {"firehose": _check(firehose), "jetstream": _check(jetstream)}
        self.forced: dict[Kind, int | None] = {"firehose": None, "jetstream": None}
        self._used: set[str] = set()

    def force(self, *, firehose: int | None = None, jetstream: int | None = None) -> None:
        self.forced = {"firehose": _check(firehose), "jetstream": _check(jetstream)}

    def pick(self, kind: Kind, source: str, committed: int | None) -> int | None:
        forced = self.forced[kind]
        if forced is not None and source not in self._used:
            self._used.add(source)
            log.warning("source.start_cursor", source=source, cursor=forced, committed=committed,
                        reason="forced on the command line")
            return forced
        if committed is not None:
            return committed
        start = self.configured[kind]
        if start is not None:
            log.info("source.start_cursor", source=source, cursor=start, reason=f"{kind.upper()}_START_CURSOR")
        return start


def _check(cursor: int | None) -> int | None:
    if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0):
        raise ValueError(f"a start cursor is a seq >= 0, got {cursor!r}")
    return cursor
