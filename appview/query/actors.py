"""Resolving actors and AT-URIs as clients give them (DID or handle) to the DIDs our tables key on."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection

from appview.errors import ActorNotFound, BadParam
from core.syntax import is_did, is_handle, parse_at_uri


@dataclass(frozen=True, slots=True)
class Actor:
    did: str
    handle: str | None
    active: bool
    status: str


async def resolve(conn: AsyncConnection, ident: str, *, visible_only: bool = True) -> Actor:
    """A DID or handle → the actor; unknown, deleted or (by default) inactive accounts are not found."""
    if is_did(ident):
        cur = await conn.execute("SELECT did, handle, active, status FROM actor WHERE did = %s", (ident,))
    elif is_handle(ident):
        cur = await conn.execute(
            "SELECT did, handle, active, status FROM actor WHERE handle = %s ORDER BY active DESC, seq DESC LIMIT 1",
            (ident.lower(),))
    else:
        raise BadParam(f"not a DID or handle: {ident[:100]!r}")
    row = await cur.fetchone()
    if row is None:
        raise ActorNotFound(f"unknown actor: {ident[:100]}")
    actor = Actor(*row)
    if visible_only and not actor.active:
        # The same answer as an unknown actor: a hidden account's status is nobody else's business.
        raise ActorNotFound(f"unknown actor: {ident[:100]}")
    return actor


async def canonical_uri(conn: AsyncConnection, uri: str, collection: str) -> str:
    """Validate an AT-URI of `collection` and rewrite a handle authority to its DID."""
    try:
        parsed = parse_at_uri(uri)
    except ValueError as e:
        raise BadParam(f"bad AT-URI: {e}") from None
    if parsed.collection != collection or parsed.rkey is None:
        raise BadParam(f"expected an at://<did>/{collection}/<rkey> URI")
    did = parsed.did_or_handle
    if not is_did(did):
        did = (await resolve(conn, did)).did
    return f"at://{did}/{collection}/{parsed.rkey}"
