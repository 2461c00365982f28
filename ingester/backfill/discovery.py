"""Which repos to backfill (sync.md §3.3): `listReposByCollection` once per in-scope collection against a
relay (exact NSIDs: the endpoint has no wildcard), unioned; or `listRepos` against a PDS host; or given DIDs.

Discovery only inserts `pending` jobs; repos already known (done or not) are skipped, so re-running it after
a crash or on a schedule costs one listing, not one getRepo per repo.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import psycopg
import structlog

from core.events import in_scope
from ingester.backfill import jobs
from ingester.sources.repos import FetchError, RepoFetcher
from ingester.validate.records import LEXICON_ROOT

log = structlog.get_logger(__name__)


def record_collections() -> list[str]:
    """The exact NSIDs of the in-scope record lexicons we carry."""
    out = []
    for path in sorted(LEXICON_ROOT.rglob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        nsid = doc.get("id")
        if isinstance(nsid, str) and in_scope(nsid) and doc.get("defs", {}).get("main", {}).get("type") == "record":
            out.append(nsid)
    return out


async def from_relay(fetcher: RepoFetcher, relay: str, collections: Iterable[str] | None = None) -> set[str]:
    dids: set[str] = set()
    for collection in collections or record_collections():
        n = len(dids)
        try:
            async for did in fetcher.list_repos_by_collection(relay, collection):
                dids.add(did)
        except FetchError as e:
            log.warning("discovery.failed", relay=relay, collection=collection, reason=e.reason)
        log.info("discovery.collection", relay=relay, collection=collection, new=len(dids) - n)
    return dids


async def from_pds(fetcher: RepoFetcher, host: str) -> set[str]:
    dids: set[str] = set()
    try:
        async for repo in fetcher.list_repos(host):
            if repo.active:  # inactive accounts have no repo to serve; their #account events will say why
                dids.add(repo.did)
    except FetchError as e:
        log.warning("discovery.failed", host=host, reason=e.reason)
    log.info("discovery.pds", host=host, repos=len(dids))
    return dids


async def discover(conn: psycopg.AsyncConnection, fetcher: RepoFetcher, *, relay: str | None = None,
                   pds_hosts: Iterable[str] = (), dids: Iterable[str] = (), force: bool = False) -> int:
    """Insert jobs for everything found; returns how many were new (or reset, with `force`)."""
    added = 0
    if relay:
        added += await jobs.enqueue(conn, await from_relay(fetcher, relay), f"listReposByCollection {relay}",
                                    reset=force)
    for host in pds_hosts:
        added += await jobs.enqueue(conn, await from_pds(fetcher, host), f"listRepos {host}", reset=force)
    added += await jobs.enqueue(conn, dids, "requested", reset=True)  # asked for by name: always re-run
    return added
