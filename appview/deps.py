"""Request dependencies shared by every read surface: a pooled connection and the viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from psycopg import AsyncConnection

from appview.auth import OptionalViewerDid


async def _conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[AsyncConnection, Depends(_conn)]


async def _read_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    """For routes that read in one statement or a few independent ones: autocommit, so a request costs no
    BEGIN and no ROLLBACK round trip; the pool gets the connection back as it lent it."""
    async with request.app.state.pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            if not conn.broken:
                await conn.set_autocommit(False)


ReadConn = Annotated[AsyncConnection, Depends(_read_conn)]
# The viewer's DID from a verified service-auth JWT; None for anonymous requests (appview/auth).
Viewer = OptionalViewerDid
