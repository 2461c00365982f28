"""Which repos to backfill (sync.md §3.3): `listReposByCollection` once per in-scope collection against a
relay (exact NSIDs: the endpoint has no wildcard), unioned; or `listRepos` against a PDS host; or given DIDs.

Discovery only inserts `pending` jobs; repos already known (done or not) are skipped, so re-running it after
a crash or on a schedule costs one listing, not one getRepo per repo. Accounts a PDS lists as not active
(deactivated, taken down…) have no repo to serve: they are recorded as `waiting` jobs, with the status the
PDS gave, and fetched when their account becomes active again (`ingester.backfill.waiting`, or a later listing
that shows them active).
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


async def list_pds(fetcher: RepoFetcher, host: str) -> tuple[set[str], dict[str, str]]:
    """(active repos, inactive repo → its status) as the PDS lists them."""
    active: set[str] = set()
    inactive: dict[str, str] = {}
    try:
        async for repo in fetcher.list_repos(host):
            if repo.active:
                active.add(repo.did)
            else:
                inactive[repo.did] = str(repo.status or "inactive")[:100]
    except FetchError as e:
        log.warning("discovery.failed", host=host, reason=e.reason)
    log.info("discovery.pds", host=host, repos=len(active), inactive=len(inactive))
    return active, inactive


async def from_pds(fetcher: RepoFetcher, host: str) -> set[str]:
    return (await list_pds(fetcher, host))[0]


async def discover(conn: psycopg.AsyncConnection, fetcher: RepoFetcher, *, relay: str | None = None,
                   pds_hosts: Iterable[str] = (), dids: Iterable[str] = (), force: bool = False) -> int:
    """Insert jobs for everything found; returns how many were new (or reset, with `force`)."""
    added = 0
    if relay:
        added += await jobs.enqueue(conn, await from_relay(fetcher, relay), f"listReposByCollection {relay}",
                                    reset=force)
    for host in pds_hosts:
        active, inactive = await list_pds(fetcher, host)
        added += await jobs.enqueue(conn, active, f"listRepos {host}", reset=force)
        added += await jobs.enqueue(conn, active, f"listRepos {host}: active again", reactivate=True)
        by_status: dict[str, list[str]] = {}
        for did, status in inactive.items():
            by_status.setdefault(status, []).append(did)
        for status, dids_ in sorted(by_status.items()):
            added += await jobs.enqueue(conn, dids_, f"listRepos {host}: account {status}", status="waiting",
                                        reset=force)
    added += await jobs.enqueue(conn, dids, "requested", reset=True)  # asked for by name: always re-run
    return added
