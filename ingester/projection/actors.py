"""Repo events → `actor` (identity, account status) and account-deletion purges."""

from __future__ import annotations

import psycopg

from core.events import LoggedRepo
from ingester.projection.base import CollectionProjector

_IDENTITY = """
INSERT INTO actor (did, handle, pds, signing_key, status, active, seq)
VALUES (%s, %s, %s, %s, 'active', true, %s)
ON CONFLICT (did) DO UPDATE SET handle = EXCLUDED.handle, pds = EXCLUDED.pds,
    signing_key = EXCLUDED.signing_key, seq = EXCLUDED.seq
"""
_ACCOUNT = """
INSERT INTO actor (did, status, active, seq) VALUES (%s, %s, %s, %s)
ON CONFLICT (did) DO UPDATE SET status = EXCLUDED.status, active = EXCLUDED.active, seq = EXCLUDED.seq
"""


async def apply_identities(cur: psycopg.AsyncCursor, events: list[LoggedRepo]) -> None:
    """Identity events, in log order, in one pipelined round trip (unresolved DIDs project nothing)."""
    rows = [(e.did, e.payload.get("handle"), e.payload.get("pds"), e.payload.get("signing_key"), e.seq)
            for e in events if e.kind == "identity" and not e.payload.get("error")]
    if rows:
        await cur.executemany(_IDENTITY, rows)


def account_status(payload: dict[str, object]) -> tuple[str, bool]:
    active = bool(payload.get("active"))
    status = payload.get("status")
    if active:
        return "active", True
    return (status if isinstance(status, str) and status else "deactivated"), False


async def apply_repo_event(
    cur: psycopg.AsyncCursor, ev: LoggedRepo, projectors: dict[str, CollectionProjector]
) -> str | None:
    """Apply one repo event; returns the actor's new status when it changed, else None."""
    p = ev.payload
    if ev.kind == "identity":
        if p.get("error"):
            return None  # unresolved DID: nothing trustworthy to project
        await cur.execute(_IDENTITY, (ev.did, p.get("handle"), p.get("pds"), p.get("signing_key"), ev.seq))
        return None
    if ev.kind != "account":
        return None
    status, active = account_status(p)
    await cur.execute(_ACCOUNT, (ev.did, status, active, ev.seq))
    if status == "deleted":
        await cur.execute(
            "UPDATE actor SET purged_rev = greatest(purged_rev COLLATE \"C\", "
            "(SELECT max(rev COLLATE \"C\") FROM record_state WHERE did = %s)) WHERE did = %s",
            (ev.did, ev.did),
        )
        for projector in projectors.values():
            await projector.purge_did(cur, ev.did)
        # Tombstone every record so a replayed older create can never bring one back.
        await cur.execute(
            "UPDATE record_state SET deleted = true, cid = NULL, item_id = NULL WHERE did = %s", (ev.did,)
        )
    return status
