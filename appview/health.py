"""/health (liveness, always 200, names what is degraded) and /ready (503 naming what is wrong).

Both judge the ingester from its heartbeats in `component_health` (the ingester may be another
process on another machine), with the database's clock, and bound every read by
`HEALTH_TIMEOUT_S` so that neither endpoint can hang on a sick database. Readiness:

- a source (firehose, Jetstream, labeler) not connected for more than `SOURCE_DOWN_GRACE_S`;
- the projector behind the log head with no progress for more than `PROJECTOR_STUCK_S`;
- any heartbeat older than `HEALTH_STALE_S` (the ingester died or hangs);
- `READY_REQUIRES_INGEST`: `auto` judges the ingester only when it has published heartbeats here and
  ignores components it stopped on purpose (a serve-only deployment is ready); `true` also requires
  a running ingester; `false` never looks at it (the body of /health still reports it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

from appview.settings import AppviewSettings

_COMPONENTS = """
SELECT component, kind, state, detail, extract(epoch FROM now() - since)::float8,
       extract(epoch FROM now() - updated_at)::float8
FROM component_health ORDER BY component
"""
_PROJECTION = """
SELECT coalesce(greatest((SELECT max(seq) FROM record_event), (SELECT max(seq) FROM repo_event),
                         (SELECT max(seq) FROM label_event)), 0),
       (SELECT position FROM projection_cursor WHERE name = 'main')
"""


@dataclass(frozen=True, slots=True)
class Row:
    component: str
    kind: str
    state: str
    detail: dict[str, Any]
    state_age_s: float
    heartbeat_age_s: float


@dataclass(frozen=True, slots=True)
class Reading:
    rows: list[Row]
    log_head: int
    position: int | None


@dataclass(frozen=True, slots=True)
class Verdict:
    components: dict[str, dict[str, Any]]
    problems: dict[str, str]  # component → what makes us not ready
    degraded: bool


async def read(pool: AsyncConnectionPool, timeout_s: float) -> Reading:
    """The heartbeats and the projector's distance to the log head, within `timeout_s` or TimeoutError."""
    async with asyncio.timeout(timeout_s):
        async with pool.connection(timeout=timeout_s) as conn, conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
            rows = [Row(c, k, s, d or {}, max(0.0, a), max(0.0, h))
                    for c, k, s, d, a, h in await (await conn.execute(_COMPONENTS)).fetchall()]
            head, position = await (await conn.execute(_PROJECTION)).fetchone()  # type: ignore[misc]
    return Reading(rows, int(head), None if position is None else int(position))


def judge(reading: Reading, settings: AppviewSettings) -> Verdict:
    mode = settings.ready_requires_ingest
    components: dict[str, dict[str, Any]] = {}
    problems: dict[str, str] = {}
    degraded = False
    for r in reading.rows:
        problem = _problem(r, reading, settings)
        if r.state == "stopped" and mode != "true":
            problem = None  # stopped on purpose: as if no ingester were configured
        view: dict[str, Any] = {"kind": r.kind, "state": r.state, "for_s": round(r.state_age_s, 1),
                                "heartbeat_age_s": round(r.heartbeat_age_s, 1), **r.detail}
        if problem is not None:
            view["problem"] = problem
            if mode != "false":
                problems[r.component] = problem
        degraded |= problem is not None or r.state not in ("up", "stopped")
        components[r.component] = view
    if mode == "true" and not any(r.state != "stopped" for r in reading.rows):
        problems["ingester"] = "no running ingester: no component publishes a heartbeat (READY_REQUIRES_INGEST=true)"
        degraded = True
    return Verdict(components, problems, degraded)


def _problem(r: Row, reading: Reading, s: AppviewSettings) -> str | None:
    if r.heartbeat_age_s > s.health_stale_s:
        return f"no heartbeat for {r.heartbeat_age_s:.0f}s (ingester down or hung); last state {r.state}"
    if r.state == "stopped":
        return "stopped"
    if r.kind == "source" and r.state != "up" and r.state_age_s > s.source_down_grace_s:
        error = r.detail.get("last_error")
        return f"not connected for {r.state_age_s:.0f}s (state {r.state})" + (f": {error}" if error else "")
    if r.kind == "projector":
        behind = reading.log_head - (reading.position or 0)
        progress_age = r.detail.get("progress_age_s")
        if not isinstance(progress_age, int | float):
            progress_age = r.state_age_s  # not published: judge by how long it has been in this state
        since_progress = float(progress_age) + r.heartbeat_age_s
        if behind > 0 and since_progress > s.projector_stuck_s:
            error = r.detail.get("last_error")
            return (f"stuck: {behind} events behind the log head, no progress for {since_progress:.0f}s"
                    + (f"; last error: {error}" if error else ""))
    return None


def health_router(settings: AppviewSettings) -> APIRouter:
    router = APIRouter(tags=["operations"])

    async def reading(request: Request) -> Reading | str:
        try:
            return await read(request.app.state.pool, settings.health_timeout_s)
        except (TimeoutError, psycopg.Error, OSError) as e:
            return f"unavailable: {type(e).__name__}: {e}"[:300] if str(e) else f"unavailable: {type(e).__name__}"

    @router.get("/health")
    async def health(request: Request) -> JSONResponse:
        """Liveness: 200 while this process serves; the body names degraded components."""
        got = await reading(request)
        body: dict[str, Any] = {}
        degraded = False
        watcher = getattr(request.app.state, "watcher", None)
        if watcher is not None and watcher.position is None and watcher.failing:  # not merely still starting
            body["api"] = {"projection-watcher": "down: responses are not cached"}
            degraded = True
        reads = getattr(request.app.state, "reads", None)
        out_of_use = {r.name: f"down: {r.error}" if not r.up else f"{r.lag_seconds or 0:.0f}s behind: not read from"
                      for r in (reads.replicas if reads is not None else []) if not r.serving}
        if out_of_use:  # reads go to the other replicas or the primary: degraded, never unready
            body["replicas"] = out_of_use
            degraded = True
        if isinstance(got, str):
            body["database"] = got
            degraded = True
        else:
            verdict = judge(got, settings)
            body["components"] = verdict.components
            body["log_head"], body["projector_position"] = got.log_head, got.position
            degraded |= verdict.degraded
        return JSONResponse({"status": "degraded" if degraded else "ok", **body})

    @router.get("/ready", responses={503: {"description": "not ready; `problems` names each component and why"}})
    async def ready(request: Request) -> JSONResponse:
        got = await reading(request)
        if isinstance(got, str):
            return JSONResponse({"status": "not_ready", "problems": {"database": got}}, status_code=503)
        verdict = judge(got, settings)
        if verdict.problems:
            return JSONResponse({"status": "not_ready", "problems": verdict.problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    return router
