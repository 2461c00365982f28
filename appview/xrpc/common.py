"""Shared bits of our XRPC query handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

from appview.errors import BadParam

F = TypeVar("F", bound=Callable[..., Any])
ROUTE: dict[str, Any] = {"response_model_exclude_none": True, "response_model_by_alias": True}


def query(router: APIRouter, nsid: str) -> Callable[[F], F]:
    """Register a GET /xrpc/<nsid> handler with XRPC serialisation (camelCase, absent = omitted)."""
    register: Callable[[F], F] = router.get(f"/xrpc/{nsid}", name=nsid, **ROUTE)
    return register


def offset_cursor(raw: str | None) -> int:
    if not raw:
        return 0
    if not raw.isdigit() or len(raw) > 9:
        raise BadParam(f"malformed cursor {raw[:40]!r}")
    return int(raw)
