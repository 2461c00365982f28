"""How long the status page (`GET /`) takes on a large log: N record events (the newest `--hot` of them in the
last hour, so the chart's bounded tail read is full), T tracks, 10k backfill jobs; medians of --repeat.

    python bench/status_page.py --events 2000000 --hot 300000 --tracks 100000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from appview.app import create_app  # noqa: E402
from appview.settings import AppviewSettings  # noqa: E402
from bench.scratch import DEFAULT_URL, scratch_database, server_line  # noqa: E402


async def seed(url: str, events: int, hot: int, tracks: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        # Old events spread over the last 30 days, the newest `hot` over the last hour (seq order = time order).
        await conn.execute(f"""
            INSERT INTO record_event (did, collection, rkey, rev, action, cid, record, source, received_at, verified)
            SELECT 'did:plc:' || lpad((g % 5000)::text, 24, 'a'), 'fm.plyr.like', 'r' || g, '3kaaaaaaaaaaa',
                   'create', 'bafy', '{{}}'::jsonb, CASE WHEN g % 10 = 0 THEN 'backfill' ELSE 'bsky.network' END,
                   CASE WHEN g > {events - hot} THEN now() - interval '1 hour' * ({events} - g)::float8 / {hot}
                        ELSE now() - interval '30 days' * ({events - hot} - g)::float8 / {events - hot}
                             - interval '1 hour' END, true
            FROM generate_series(1, {events}) g""")
        await conn.execute(f"""
            INSERT INTO track (id, uri, did, rkey, cid, rev, title, artist, file_type, audio_url, features,
                               self_labels, created_at, indexed_at, record, sort_at)
            SELECT g, 'at://did:plc:x/fm.plyr.track/' || g, 'did:plc:' || lpad((g % 5000)::text, 24, 'a'), g::text,
                   'bafy', '3kaaaaaaaaaaa', 't' || g, 'a', 'mp3', 'https://audio.plyr.fm/audio/' || g || '.mp3',
                   '[]', '[]', '2026-01-01T00:00:00Z', now(), '{{}}', now()
            FROM generate_series(1, {tracks}) g""")
        await conn.execute("""
            INSERT INTO backfill_job (did, status, reason, error)
            SELECT 'did:plc:' || lpad(g::text, 24, 'b'), (ARRAY['pending','running','done','failed'])[1 + g % 4],
                   'bench', CASE WHEN g % 4 = 3 THEN 'timeout' END FROM generate_series(1, 10000) g""")
        await conn.execute("INSERT INTO source_cursor (source, cursor) VALUES ('bsky.network', 123456789)")
        await conn.execute("ANALYZE")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default=DEFAULT_URL)
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--hot", type=int, default=300_000)
    p.add_argument("--tracks", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    async with scratch_database(a.url, "bench_status") as url:
        t0 = time.perf_counter()
        await seed(url, a.events, a.hot, a.tracks)
        print(f"seeded {a.events:,} events ({a.hot:,} in the last hour), {a.tracks:,} tracks in "
              f"{time.perf_counter() - t0:.1f} s; {await server_line(url)}")
        app = create_app(AppviewSettings(response_cache=False), url)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as c:
                times = []
                for i in range(a.repeat + 1):
                    t = time.perf_counter()
                    r = await c.get("/")
                    assert r.status_code == 200 and "Unavailable" not in r.text, r.text[-400:]
                    if i:  # the first one warms the cache
                        times.append((time.perf_counter() - t) * 1000)
        print(f"GET / : median {statistics.median(times):.0f} ms, max {max(times):.0f} ms over {a.repeat}")


if __name__ == "__main__":
    asyncio.run(main())
