"""`GET /`: the status page, server-rendered HTML with inline CSS and SVG only (works offline; a
`default-src 'none'` content security policy proves it loads nothing from anywhere).

Everything shown that came from the network (source names, failure reasons, DIDs, PDS hosts) is escaped.
"""

from __future__ import annotations

import time
from datetime import datetime
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from prometheus_client import Histogram

from appview.deps import PrimaryConn
from appview.pages.chart import fmt_duration, ingest_svg
from appview.pages.status_data import TAIL_CAP, PlayabilityCache, StatusPage, read_page
from appview.status import ReplicaStatus, Status

RENDER = Histogram("appview_status_page_seconds", "Time to read and render the status page")
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
FAILURES_SHOWN = 10

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:18px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px}
table{border-collapse:collapse;width:100%;background:#fff}td,th{padding:4px 8px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}th{font-weight:600;color:#555}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}.warn{color:#a15c00}.bad{color:#b00020}.ok{color:#137333}nav a{margin-right:14px}
.chart{background:#fff;border:1px solid #eee;max-width:100%;height:auto}.bar{fill:#6b8afd}
.lag{stroke:#d9480f;stroke-width:1.5}.axis{stroke:#bbb}.legend{font-size:11px;fill:#555}.lagtext{fill:#d9480f}
code{font-size:12px;word-break:break-all}
"""


def _n(v: int) -> str:
    return f"{v:,}"


def _when(t: datetime) -> str:
    return escape(f"{t:%Y-%m-%d %H:%M:%S} UTC")


def _table(head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(rows_i) + "</tr>" for rows_i in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _replicas(s: Status) -> str:
    def lag(r: ReplicaStatus) -> str:
        if r.lag_seconds is None:
            return '<td class="n muted">?</td>'
        cls = "ok" if r.lag_seconds < 5 else "warn" if r.serving else "bad"
        return f'<td class="n {cls}">{fmt_duration(r.lag_seconds)}</td>'

    def state(r: ReplicaStatus) -> str:
        if not r.up:
            return f'<td class="bad">down: {escape(r.error or "?")}</td>'
        text = "serving" if r.serving else "too far behind: reads go elsewhere"
        return f'<td class="{"ok" if r.serving else "warn"}">{text}{" (replay paused)" if r.replay_paused else ""}</td>'

    def num(v: int | None) -> str:
        return f'<td class="n">{"?" if v is None else _n(v)}</td>'

    return _table(["replica", "state", "replay lag", "WAL bytes behind", "events behind", "projector position"], [
        [f"<td><code>{escape(r.name)}</code></td>", state(r), lag(r), num(r.lag_bytes), num(r.lag_events),
         num(r.projector_position)] for r in s.replicas])


def render(page: StatusPage, render_ms: float | None = None) -> str:
    out = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width,initial-scale=1">',
           '<meta http-equiv="refresh" content="30"><title>plyr-appview status</title>',
           f"<style>{_CSS}</style></head><body>",
           '<h1>plyr-appview</h1><p class="muted">An event-sourced ATProto AppView for plyr.fm '
           "(<code>fm.plyr.*</code>): read-only, built from the network's records. This page refreshes every "
           "30 s.</p>",
           '<nav id="links"><a href="/docs">API docs (Swagger UI)</a>'
           '<a href="/openapi.json">/openapi.json</a><a href="/status">/status (JSON)</a>'
           '<a href="/metrics">/metrics</a><a href="/health">/health</a></nav>']
    s = page.status
    if s is not None:
        lag_cls = "ok" if s.projector_lag_events < 1000 else "warn"
        out.append('<h2>Log and projections</h2><table id="log"><tbody>'
                   f'<tr><th>log head (seq)</th><td class="n">{_n(s.log_head)}</td></tr>'
                   f'<tr><th>projector position</th><td class="n">{_n(s.projector_position)}</td></tr>'
                   f'<tr><th>projector lag</th><td class="n {lag_cls}">{_n(s.projector_lag_events)} events</td></tr>'
                   + "".join(f'<tr><th>repos {escape(k)}</th><td class="n">{_n(v)}</td></tr>'
                             for k, v in sorted(s.repos.items()))
                   + "</tbody></table>")
        out.append('<h2>Sources</h2><div id="sources">')
        out.append(_table(["source", "cursor", "cursor last moved", "lag"], [
            [f"<td><code>{escape(src.source)}</code></td>", f'<td class="n">{_n(src.cursor)}</td>',
             f"<td>{_when(src.updated_at)}</td>",
             f'<td class="n {"ok" if src.lag_seconds < 60 else "warn"}">{fmt_duration(src.lag_seconds)}</td>']
            for src in s.sources]))
        out.append("</div>")
        if s.replicas:
            out.append('<h2>Read replicas</h2><div id="replicas">' + _replicas(s) + "</div>")
    w = page.ingest
    out.append('<h2>Ingest, last hour</h2><div id="ingest">')
    if w is not None:
        live = [m.lag_s for m in w.minutes if m.lag_s is not None]
        rate = w.events / 60
        out.append(f'<p>{_n(w.events)}{"+" if w.truncated else ""} record events in the last hour '
                   f'({rate:.1f}/min on average)' + (f"; latest commit lag {fmt_duration(live[-1])}" if live else "")
                   + ".</p>" + ingest_svg(w))
        out.append('<p class="muted">Arrivals per minute from the log\'s <code>received_at</code>; lag = arrival '
                   "minus the time the commit's <code>rev</code> was minted, for the newest live commit of each "
                   f"minute (backfills excluded). Reads at most the newest {_n(TAIL_CAP)} log rows"
                   + ("; the last hour held more, so counts start later than an hour ago" if w.truncated else "")
                   + ".</p>")
    out.append("</div>")
    if s is not None:
        b = s.backfill
        out.append('<h2>Backfill</h2><div id="backfill">')
        out.append(_table(["pending", "running", "done", "failed", "records", "changes"], [[
            *(f'<td class="n">{_n(b.jobs.get(k, 0))}</td>' for k in ("pending", "running", "done", "failed")),
            f'<td class="n">{_n(b.records)}</td>', f'<td class="n">{_n(b.changes)}</td>']]))
        if b.failures:
            out.append("<p>Latest failures:</p>" + _table(["repo", "PDS", "attempts", "error", "when"], [
                [f"<td><code>{escape(f.did)}</code></td>", f"<td><code>{escape(f.pds or '?')}</code></td>",
                 f'<td class="n">{f.attempts}</td>', f'<td class="bad">{escape((f.error or "")[:300])}</td>',
                 f"<td>{_when(f.updated_at)}</td>"] for f in b.failures[:FAILURES_SHOWN]]))
        out.append("</div>")
    out.append('<h2>Playability</h2><div id="playability">')
    if page.playability is not None and page.playability_at is not None:
        out.append(_table(list(page.playability), [[f'<td class="n">{_n(v)}</td>'
                                                     for v in page.playability.values()]])
                   + f'<p class="muted">As of {_when(page.playability_at)} (recounted in the background at most '
                     "every minute). mirrored: our verified copy; pds_only: the artist's PDS; url_only: an "
                     "allow-listed audio URL; dead: no source left.</p>")
    else:
        out.append('<p class="muted">Being counted in the background: reload in a moment.</p>')
    out.append("</div>")
    if page.rows is not None:
        out.append('<h2>Rows (estimates)</h2><div id="rows">' + _table(
            list(page.rows), [[f'<td class="n">≈ {_n(v)}</td>' for v in page.rows.values()]]) + "</div>")
    if page.unavailable:
        out.append(f'<p class="warn">Unavailable this time (slow or failing): {escape(", ".join(page.unavailable))}.'
                   "</p>")
    if render_ms is not None:
        out.append(f'<p class="muted">Read in {render_ms:.0f} ms.</p>')
    out.append("</body></html>")
    return "".join(out)


def status_page_router(playability: PlayabilityCache) -> APIRouter:
    router = APIRouter()

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def status_page(conn: PrimaryConn, request: Request) -> HTMLResponse:
        started = time.perf_counter()
        page = await read_page(conn, request.app.state.pool, request.app.state.audio_hosts, playability)
        if page.status is not None:
            page.status.replicas = request.app.state.reads.status()
        elapsed = time.perf_counter() - started
        RENDER.observe(elapsed)
        return HTMLResponse(render(page, elapsed * 1000), headers={
            "Content-Security-Policy": CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    return router
