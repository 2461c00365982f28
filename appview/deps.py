"""Request dependencies shared by every read surface: a pooled connection and the viewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from psycopg import AsyncConnection


async def _conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.pool.connection() as conn:
        yield conn


async def _viewer(request: Request) -> str | None:
    return None


Conn = Annotated[AsyncConnection, Depends(_conn)]
Viewer = Annotated[str | None, Depends(_viewer)]
