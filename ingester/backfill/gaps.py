"""Gaps close themselves: what a source may have hidden from us is enqueued for a resync, durably.

Two kinds of gap:
- **An outdated cursor.** A PDS answers a cursor older than its window with `#info OutdatedCursor` and
  replays from the window's start; Jetstream v2 refuses it with `CursorTooOld` (we resume at its floor).
  Whatever happened in between is lost to the stream. Every repo we track that this source could have carried
  gets a resync job (reason `gap:<source>`, one row per repo however many gaps, listed by reason in
  `/status`): all of them for a relay or Jetstream, the ones hosted there for a PDS. When discovery is
  configured the gap also owes a re-discovery, for repos that began writing `fm.plyr.*` inside it; that debt
  needs no row of its own, since every start of the ingester runs discovery. The pipelines call the hook
  *before* they commit anything past the gap, so a crash in between only means the host reports it again.
  Relays and Jetstream v1 never report a too-old cursor (sync.md §1.4): those gaps are found, repo by repo,
  by the chain checks only.
- **An account that was not active** when we listed or fetched it (a `waiting` job). Its `#account` event
  saying it is active again (the pipelines call `reactivated` for every such event, tracked repo or not)
  enqueues its resync at once, as it does for any repo whose records we never managed to fetch (failed job).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
import structlog
from prometheus_client import Counter

from core.db.connect import connect
from ingester.backfill import jobs
from ingester.backfill.discovery import discover
from ingester.sources.repos import RepoFetcher

log = structlog.get_logger(__name__)

CURSOR_GAPS = Counter("ingest_cursor_gaps_total", "Outdated cursors reported by a source (events lost to the stream)",
                      ["source"])
GAP_RESYNCS = Counter("backfill_gap_resyncs_total", "Resync jobs enqueued because of a gap", ["kind"])

Submit = Callable[[str, str | None], None]
MAX_EARLY = 100_000  # a relay's network-wide #account events while we start: enough for minutes of them
_TRACKED = "SELECT did FROM repo_state UNION SELECT DISTINCT did FROM record_event"
_HOSTED = ("SELECT did, pds FROM actor WHERE pds IS NOT NULL"
           " UNION SELECT did, pds FROM backfill_job WHERE pds IS NOT NULL")


@dataclass(frozen=True, slots=True)
class Gap:
    source: str
    reason: str
    repos: int  # resync jobs enqueued (or reset) for it
    dids: tuple[str, ...] = ()  # the repos behind it


def netloc(url: str) -> str:
    """`host:port` of a URL or a bare host, lower-cased: how a PDS is matched with the host of a source."""
    try:  # a PDS URL comes from a DID document: anything at all
        return urlsplit(url if "://" in url else f"//{url}").netloc.lower()
    except ValueError:
        return ""


async def repos_behind(conn: psycopg.AsyncConnection, host: str | None) -> list[str]:
    """The tracked repos a source at `host` could have carried: those a PDS there hosts, or (a relay, an
    aggregator, `host` None, or a host that hosts none of the repos we know) every tracked repo."""
    async with conn.cursor() as cur:
        await cur.execute(_TRACKED)
        tracked = {r[0] for r in await cur.fetchall()}
        hosted: set[str] = set()
        if host is not None:
            await cur.execute(_HOSTED)
            where = netloc(host)
            hosted = {did for did, pds in await cur.fetchall() if where and netloc(pds) == where}
    await conn.commit()
    return sorted(tracked & hosted if hosted else tracked)


async def record_gap(conn: psycopg.AsyncConnection, source: str, reason: str, *, host: str | None,
                     cursor: int | None) -> Gap:
    """Enqueue (or reset) the resync jobs the gap calls for."""
    dids = await repos_behind(conn, host)
    n = await jobs.enqueue(conn, dids, f"gap:{source}", reset=True)
    CURSOR_GAPS.labels(source).inc()
    GAP_RESYNCS.labels("cursor").inc(n)
    log.error("backfill.cursor_gap", source=source, reason=reason[:200], cursor=cursor, repos=n)
    return Gap(source, reason[:500], n, tuple(dids))


class Gaps:
    """The service's side: hooks for the pipelines, and a `step` for the resync loop."""

    def __init__(self, url: str, fetcher: RepoFetcher, *, relay: str | None = None, pds_hosts: Iterable[str] = (),
                 submit: Submit | None = None) -> None:
        self.url, self.fetcher, self.submit = url, fetcher, submit
        self.relay, self.pds_hosts = relay, list(pds_hosts)
        self.unfetched: set[str] = set()  # waiting or failed jobs: resynced when their account is active
        self.owed = False  # a gap owes a re-discovery
        self.loaded = False
        self._early: set[str] = set()  # active before `unfetched` was first loaded: judged after the load
        self.wake = asyncio.Event()  # … so the resync loop should not sleep on

    @property
    def discovery(self) -> bool:
        return bool(self.relay or self.pds_hosts)

    async def gap(self, source: str, reason: str, *, host: str | None, cursor: int | None) -> Gap:
        """The pipelines' hook (before they commit past the gap); raises if the database is unreachable,
        so that the batch is retried and the gap is never lost."""
        async with await connect(self.url) as conn:
            found = await record_gap(conn, source, reason, host=host, cursor=cursor)
        if self.submit is not None:
            for did in found.dids:
                self.submit(did, f"gap:{source}")
        if self.discovery:
            self.owed = True
            self.wake.set()
        return found

    def reactivated(self, did: str) -> None:
        """An `#account` event says `did` is active: fetch its records if we never managed to."""
        if self.submit is None:  # resync is off: the job stays as it is for `appview backfill`
            return
        if not self.loaded:
            if len(self._early) < MAX_EARLY:
                self._early.add(did)
            return
        if did in self.unfetched:
            self.unfetched.discard(did)
            log.info("backfill.reactivated", did=did)
            GAP_RESYNCS.labels("reactivated").inc()
            self.submit(did, "reactivated: #account active")

    def note(self, did: str, ok: bool) -> None:
        """A resync outcome: a failed one waits for the account's next reactivation too."""
        (self.unfetched.discard if ok else self.unfetched.add)(did)

    async def step(self, conn: psycopg.AsyncConnection) -> None:
        """Run the re-discovery gaps owe (if the listing fails, the next start lists again), then reload who
        waits for a reactivation."""
        if self.owed and self.discovery:
            self.owed = False  # before: a gap reported while we list owes another listing
            added = await discover(conn, self.fetcher, relay=self.relay, pds_hosts=self.pds_hosts)
            log.info("backfill.gap_rediscovered", new_jobs=added)
        self.unfetched = set(await jobs.unfetched(conn))
        if not self.loaded:
            self.loaded = True
            for did in self._early:
                self.reactivated(did)
            self._early.clear()

    async def pause(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep until `stop`, a gap that owes a discovery, or `seconds`."""
        waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())}
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            self.wake.clear()
