"""A small inline SVG chart: events per minute as bars, lag as a line, over the last hour. No script,
no external asset: it renders offline and under a `default-src 'none'` content security policy."""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from appview.pages.status_data import WINDOW_MINUTES, IngestWindow

WIDTH, HEIGHT, PAD = 720, 160, 28


def fmt_duration(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h" if s < 172_800 else f"{s / 86400:.0f} days"


def ingest_svg(window: IngestWindow) -> str:
    end = window.now.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=WINDOW_MINUTES - 1)
    by_minute = {m.start.replace(tzinfo=end.tzinfo) if m.start.tzinfo is None else m.start: m for m in window.minutes}
    slots: list[tuple[datetime, int, float | None]] = []
    for i in range(WINDOW_MINUTES):
        t = start + timedelta(minutes=i)
        m = by_minute.get(t)
        slots.append((t, m.events if m else 0, m.lag_s if m else None))
    peak = max((n for _, n, _ in slots), default=0) or 1
    peak_lag = max((lag for _, _, lag in slots if lag is not None), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    bar_w = plot_w / WINDOW_MINUTES
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" aria-label="log events per minute and lag, last hour">',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>']
    points = []
    for i, (t, n, lag) in enumerate(slots):
        x = PAD + i * bar_w
        h = plot_h * n / peak
        label = escape(f"{t:%H:%M} UTC: {n} events" + (f", lag {fmt_duration(lag)}" if lag is not None else ""))
        parts.append(f'<rect class="bar" x="{x + 0.5:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                     f'height="{h:.1f}"><title>{label}</title></rect>')
        if lag is not None:
            points.append(f"{x + bar_w / 2:.1f},{HEIGHT - PAD - plot_h * min(lag, peak_lag) / peak_lag:.1f}")
    if points:
        parts.append(f'<polyline class="lag" fill="none" points="{" ".join(points)}"/>')
    parts += [f'<text x="{PAD}" y="{PAD - 10}" class="legend">{peak} events/min (bars)</text>',
              f'<text x="{WIDTH - PAD}" y="{PAD - 10}" class="legend lagtext" text-anchor="end">'
              + (f'lag up to {escape(fmt_duration(peak_lag))} (line)' if points else "no live commits") + "</text>",
              f'<text x="{PAD}" y="{HEIGHT - 8}" class="legend">{start:%H:%M}</text>',
              f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" class="legend" text-anchor="end">{end:%H:%M} UTC</text>',
              "</svg>"]
    return "".join(parts)
