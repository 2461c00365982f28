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


# Reads for the public surfaces: from the request's read target (a replica when DATABASE_READ_URL is set).
Conn = Annotated[AsyncConnection, Depends(_conn)]
# Operations views (/status, the status page): the primary's own account of itself.
PrimaryConn = Annotated[AsyncConnection, Depends(_primary_conn)]
# The viewer's DID from a verified service-auth JWT; None for anonymous requests (appview/auth).
Viewer = OptionalViewerDid
