"""Re-judge the log: every stored record against the current lexicons (`appview rebuild --revalidate`).

The verdict stored in `record_event.rejected` is the one given when the record arrived; a lexicon or
validator fix (or a regression) changes what it should be. This pass recomputes it with the validator the
pipeline uses and writes the new verdict into the log, so the rebuild that follows projects what was
wrongly rejected and drops what is now invalid. A verdict is a pure function of (stored record, lexicons):
the same log and lexicons give the same verdicts, hence the same projection digest.

Left as they are: deletes (no body), rows stored without their body (unstorable, or a record block that did
not decode: nothing to re-judge, they stay rejected), and verdicts that are not about the record's content
(`NOT_LEXICAL`, e.g. a Jetstream event whose rev is not a TID).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg
import structlog

from ingester.validate.records import RecordValidator

log = structlog.get_logger(__name__)

# Verdicts given by the pipelines, not the validator (ingester.pipeline.jetstream.BAD_REV starts so).
NOT_LEXICAL = ("bad rev",)
_ROWS = ("SELECT seq, collection, rkey, record, rejected FROM record_event"
         " WHERE action <> 'delete' AND record IS NOT NULL AND seq <= %s ORDER BY seq")
_APPLY = ("UPDATE record_event r SET rejected = c.rejected FROM _revalidated c"
          " WHERE r.seq = c.seq AND r.rejected IS DISTINCT FROM c.rejected")


@dataclass
class Revalidation:
    examined: int = 0  # records judged again
    reaccepted: int = 0  # rejected before, accepted now
    newly_rejected: int = 0  # accepted before, rejected now
    reason_changed: int = 0  # rejected both times, for another reason
    kept: int = 0  # verdicts not about the content, left alone

    @property
    def changed(self) -> int:
        return self.reaccepted + self.newly_rejected + self.reason_changed

    def render(self) -> str:
        return (f"revalidate: {self.examined} records judged again, {self.reaccepted} re-accepted, "
                f"{self.newly_rejected} newly rejected, {self.reason_changed} rejected for another reason, "
                f"{self.kept} left as they were")


async def revalidate(conn: psycopg.AsyncConnection, validator: RecordValidator | None = None, *,
                     page: int = 5000) -> Revalidation:
    """Write the current verdict of every logged record up to the log head; returns the counts."""
    validator = validator or RecordValidator()
    started = time.monotonic()
    out = Revalidation()
    changes: list[tuple[int, str | None]] = []
    async with conn.cursor() as cur:
        await cur.execute("SELECT coalesce(max(seq), 0) FROM record_event")
        head = (await cur.fetchone() or (0,))[0]
    await conn.commit()
    # A named (server-side) cursor: the log may be far larger than memory; only the changes are kept.
    async with conn.transaction(), conn.cursor(name="revalidate") as rows:
        rows.itersize = page
        await rows.execute(_ROWS, (head,))
        async for seq, collection, rkey, record, old in rows:
            if old is not None and old.startswith(NOT_LEXICAL):
                out.kept += 1
                continue
            out.examined += 1
            new = validator.check(collection, rkey, record)
            if new == old:
                continue
            if old is None:
                out.newly_rejected += 1
            elif new is None:
                out.reaccepted += 1
            else:
                out.reason_changed += 1
            changes.append((seq, new))
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute("CREATE TEMP TABLE _revalidated (seq bigint PRIMARY KEY, rejected text) ON COMMIT DROP")
        async with cur.copy("COPY _revalidated (seq, rejected) FROM STDIN") as copy:
            for row in changes:
                await copy.write_row(row)
        await cur.execute(_APPLY)
    log.info("revalidate.done", examined=out.examined, reaccepted=out.reaccepted,
             newly_rejected=out.newly_rejected, reason_changed=out.reason_changed, kept=out.kept,
             seconds=round(time.monotonic() - started, 2))
    return out


__all__ = ["NOT_LEXICAL", "Revalidation", "revalidate"]
