"""Request dependencies shared by every read surface: a pooled connection and the viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, Request
from psycopg import AsyncConnection

from appview.auth import OptionalViewerDid


def read_connection(request: Request) -> AbstractAsyncContextManager[AsyncConnection]:
    """A connection to the database this request reads from: its replica, or the primary (appview/reads.py)."""
    return request.app.state.reads.connection(request.scope)  # type: ignore[no-any-return]


async def _conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with read_connection(request) as conn:
        yield conn


async def _primary_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.pool.connection() as conn:
        yield conn


# Every connection goes back to the pool when the handler returns (scope="function"), not once the response
# has been sent, FastAPI's default for a yield dependency: a client that reads slowly, or stops reading,
# must not hold a pool connection while its body waits in the socket (tests/appview/test_cors.py).
# Reads for the public surfaces: from the request's read target (a replica when DATABASE_READ_URL is set).
Conn = Annotated[AsyncConnection, Depends(_conn, scope="function")]
# Operations views (/status, the status page): the primary's own account of itself.
PrimaryConn = Annotated[AsyncConnection, Depends(_primary_conn, scope="function")]


async def _read_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    """`Conn` for routes that read in one statement or a few independent ones: autocommit, so a request costs
    no BEGIN and no ROLLBACK round trip; the pool gets the connection back as it lent it."""
    async with read_connection(request) as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            if not conn.broken:
                await conn.set_autocommit(False)


ReadConn = Annotated[AsyncConnection, Depends(_read_conn, scope="function")]
# The viewer's DID from a verified service-auth JWT; None for anonymous requests (appview/auth).
Viewer = OptionalViewerDid
