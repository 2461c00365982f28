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
# The viewer's DID from a verified service-auth JWT; None for anonymous requests (appview/auth).
Viewer = OptionalViewerDid
