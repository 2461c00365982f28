"""The playability checker: re-verify a sample of every kind of source, publish the counts.

Mirrored copies are checked against the store, PDS-only blobs against the PDS, audio URLs with a
HEAD. A source found gone is recorded, so a track whose every source is gone shows as `dead` in
the views and in /metrics; the mirror re-fetches a copy missing from the store.
"""

from __future__ import annotations

import asyncio

import psycopg
import structlog

from core.blobstore import BlobStore
from core.blobstore.playability import PLAYABILITY_JOINS, PLAYABILITY_SQL, STATES, URL_HOST_OK, host_patterns
from core.db.connect import connect
from core.outbound import RefusedAddress
from core.retry import pause
from ingester.blobs.fetch import GuardedHttp, blob_status
from ingester.blobs.metrics import BLOBS, CHECKS, PLAYABILITY
from ingester.settings import IngesterSettings

log = structlog.get_logger(__name__)

_MIRRORED = """
SELECT cid, size FROM blob WHERE state = 'mirrored' AND store = %s ORDER BY checked_at NULLS FIRST LIMIT %s
"""
_PDS_ONLY = """
SELECT b.cid, r.did, a.pds FROM blob b
CROSS JOIN LATERAL (SELECT t.did FROM track t WHERE t.audio_blob_cid = b.cid ORDER BY t.id DESC LIMIT 1) r
JOIN actor a ON a.did = r.did
WHERE b.state IN ('pending', 'failed') AND a.pds IS NOT NULL
ORDER BY b.checked_at NULLS FIRST LIMIT %(n)s
"""
_URLS = f"""
SELECT t.audio_url FROM track t LEFT JOIN audio_url_check u ON u.url = t.audio_url
WHERE {URL_HOST_OK}
GROUP BY t.audio_url, u.checked_at ORDER BY u.checked_at NULLS FIRST LIMIT %(n)s
"""
_URL_RESULT = """
INSERT INTO audio_url_check (url, ok, status, reason, checked_at) VALUES (%s, %s, %s, %s, now())
ON CONFLICT (url) DO UPDATE SET ok = EXCLUDED.ok, status = EXCLUDED.status, reason = EXCLUDED.reason,
    checked_at = now()
"""


def url_alive(status: int | None) -> bool | None:
    """True/False when the status settles it; None (unknown, keep the last verdict) otherwise."""
    if status is None:
        return None
    if status in (404, 410):
        return False
    if status < 400 or status in (401, 402, 403, 405, 416):  # gated or HEAD-less endpoints are alive
        return True
    return None


class PlayabilityChecker:
    def __init__(self, settings: IngesterSettings, url: str, store: BlobStore, http: GuardedHttp) -> None:
        self.settings, self.url, self.store, self.http = settings, url, store, http
        self.hosts = host_patterns(settings.allowed_audio_hosts)

    async def run(self, stop: asyncio.Event) -> None:
        """A check every `playability_check_interval_s`; a failed check (network, database) is logged and
        the next one comes at its time. Anything else ends the run (the supervisor restarts it)."""
        while not stop.is_set():
            try:
                await self.check_once()
            except (OSError, psycopg.Error) as e:
                log.warning("playability.check_failed", error=str(e))
            await pause(stop, self.settings.playability_check_interval_s)

    async def check_once(self) -> dict[str, int]:
        n = self.settings.playability_check_sample
        async with await connect(self.url, autocommit=True) as conn:
            await self._check_mirrored(conn, n)
            await self._check_pds(conn, n)
            await self._check_urls(conn, n)
            return await self.publish(conn)

    async def _check_mirrored(self, conn: psycopg.AsyncConnection, n: int) -> None:
        rows = await (await conn.execute(_MIRRORED, (self.store.kind, n))).fetchall()
        for cid, size in rows:
            have = await self.store.size_of(cid)
            if have is not None and (size is None or have == size):
                CHECKS.labels("mirror", "ok").inc()
                await conn.execute("UPDATE blob SET checked_at = now() WHERE cid = %s", (cid,))
                continue
            CHECKS.labels("mirror", "missing").inc()
            log.warning("playability.mirror_missing", cid=cid)
            await conn.execute(
                "UPDATE blob SET state = 'pending', reason = 'missing_in_store', next_attempt_at = now(),"
                " checked_at = now(), updated_at = now() WHERE cid = %s AND state = 'mirrored'", (cid,))

    async def _check_pds(self, conn: psycopg.AsyncConnection, n: int) -> None:
        rows = await (await conn.execute(_PDS_ONLY, {"n": n})).fetchall()
        for cid, did, pds in rows:
            got = await blob_status(self.http, pds, did, cid)
            if got.gone:
                CHECKS.labels("pds", "gone").inc()
                log.warning("playability.pds_blob_gone", cid=cid, did=did, reason=got.reason)
                await conn.execute(
                    "UPDATE blob SET state = 'gone', reason = %s, checked_at = now(), updated_at = now()"
                    " WHERE cid = %s AND state IN ('pending', 'failed')", (got.reason, cid))
            else:
                CHECKS.labels("pds", "ok" if got.ok else "unknown").inc()
                await conn.execute("UPDATE blob SET checked_at = now() WHERE cid = %s", (cid,))

    async def _check_urls(self, conn: psycopg.AsyncConnection, n: int) -> None:
        rows = await (await conn.execute(_URLS, {"n": n, "audio_hosts": self.hosts})).fetchall()
        for (url,) in rows:
            try:
                status = await self.http.probe(url)
                alive, reason = url_alive(status), None if status is not None else "network"
            except RefusedAddress as e:
                status, alive, reason = None, False, f"refused:{e}"[:200]
            if alive is None:
                CHECKS.labels("url", "unknown").inc()
                continue
            CHECKS.labels("url", "ok" if alive else "dead").inc()
            await conn.execute(_URL_RESULT, (url, alive, status, reason))

    async def publish(self, conn: psycopg.AsyncConnection) -> dict[str, int]:
        """Set the playability and blob-state gauges; returns the playability counts."""
        sql = f"SELECT {PLAYABILITY_SQL} AS p, count(*) FROM track t {PLAYABILITY_JOINS} GROUP BY p"
        counts = dict.fromkeys(STATES, 0)
        for p, c in await (await conn.execute(sql, {"audio_hosts": self.hosts})).fetchall():
            counts[p] = int(c)
        for s, c in counts.items():
            PLAYABILITY.labels(s).set(c)
        blob_counts = dict.fromkeys(("pending", "mirrored", "failed", "gone", "released"), 0)
        for s, c in await (await conn.execute("SELECT state, count(*) FROM blob GROUP BY state")).fetchall():
            blob_counts[s] = int(c)
        for s, c in blob_counts.items():
            BLOBS.labels(s).set(c)
        if counts["dead"]:
            log.info("playability.dead_tracks", count=counts["dead"])
        return counts
