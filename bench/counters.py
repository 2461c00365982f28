"""The projector's live step by the size of what it counts: one new track of an artist with N tracks, one new
teal.fm play of a track with N plays, and one new like of a track with N likes.

Every step that writes a track, a like, a comment or a play moves that artist's `artist_counter` row, and a play
moves its track's play count. The projector moves both by the difference the step made
(`ingester/projection/counters.py`: `_TRACKS_MOVING`, `mark_links`), so a step costs about the same whatever
the catalogue or the track's popularity. Beside each step, in the same run and on the same rows, the statement
the projector ran for it before is timed on its own: the artist re-summed from every one of its tracks
(`_ARTISTS`), the track's plays counted from `play`, or its likes and comments counted from `like` and `comment`
(`counts._RECOUNT`, which `SubjectCounts` ran per touched subject before it moved them by difference). That is
what each such step paid on top.

  .venv/bin/python bench/counters.py [--sizes 10,10000,50000] [--plays 10,100000] [--likes 10,100000] [--steps 100]
      [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch import DEFAULT_URL, scratch_database, server_line  # noqa: E402
from core.db.connect import connect  # noqa: E402
from core.events import RecordEvent  # noqa: E402
from ingester.eventlog.append import append_batch  # noqa: E402
from ingester.projection import counters, counts  # noqa: E402
from ingester.projection.runner import Projector  # noqa: E402
from tests.ingester.events import identity, put, track  # noqa: E402

DID = "did:plc:benchcountersaaaaaaaaaaa"
PLAY = "fm.teal.feed.play"
TRACK_URI = f"at://{DID}/fm.plyr.track/r0"
COUNT_PLAYS = ("SELECT count(*) FROM play p WHERE p.track_uri = %(uri)s "
               "AND NOT EXISTS (SELECT 1 FROM actor a WHERE a.did = p.did AND NOT a.active)")


def play(i: int, prefix: str) -> RecordEvent:
    record = {"$type": PLAY, "trackName": "t0", "artists": [{"artistName": "artist"}], "originUrl": TRACK_URI,
              "musicServiceUri": "https://plyr.fm", "playedTime": "2026-11-20T10:00:00Z"}
    return put(f"did:plc:{prefix}{i:022d}", PLAY, f"3k{i:011d}", f"3k{i:011d}", record)


def like(i: int, prefix: str) -> RecordEvent:
    record = {"$type": "fm.plyr.like", "subject": {"uri": TRACK_URI, "cid": "bafytrack"},
              "createdAt": "2026-11-20T10:00:00Z"}
    return put(f"did:plc:{prefix}{i:022d}", "fm.plyr.like", "3kaaaaaaaaa22", f"3k{i:011d}", record)


async def one_popular(url: str, n: int, steps: int, event: Callable[[int, str], RecordEvent], baseline: str,
                      counted: str) -> tuple[float, float]:
    """(median live step ms, median `baseline` ms) for one new `event` on a track that already has `n` of them;
    `baseline` (the statement each such step ran before, parameter `uri`) is timed alone in a rolled-back
    transaction after each step, and `counted` (parameter `uri`) must end at n + steps."""
    async with await connect(url) as conn:
        await append_batch(conn, [identity(DID, "bench.test"), put(DID, "fm.plyr.track", "r0", "3k00000000000",
                                                                   track("t0", duration=200))])
        for b in range(0, n, 5000):
            await append_batch(conn, [event(i, "l") for i in range(b, min(n, b + 5000))])
        projector = Projector()
        await projector.catch_up(conn)
        await conn.execute("ANALYZE")
        await conn.execute("SET synchronous_commit = off")
        await conn.commit()
        step_ms: list[float] = []
        count_ms: list[float] = []
        for i in range(steps):
            await append_batch(conn, [event(i, "m")])
            t0 = time.perf_counter()
            await projector.step(conn)
            step_ms.append((time.perf_counter() - t0) * 1000)
            async with conn.transaction(force_rollback=True), conn.cursor() as cur:
                t0 = time.perf_counter()
                await cur.execute(baseline, {"uri": TRACK_URI, "subjects": [TRACK_URI]})
                count_ms.append((time.perf_counter() - t0) * 1000)
        row = await (await conn.execute(counted, {"uri": TRACK_URI})).fetchone()
        assert row is not None and row[0] == n + steps, row  # the bench's own sanity check
        return statistics.median(step_ms), statistics.median(count_ms)


async def one_size(url: str, size: int, steps: int) -> tuple[float, float]:
    """(median live step ms, median whole-artist re-sum ms) for an artist with `size` tracks."""
    async with await connect(url) as conn:
        batch = 5000
        for b in range(0, size, batch):
            await append_batch(conn, [identity(DID, "bench.test")] + [
                put(DID, "fm.plyr.track", f"r{i}", f"3k{i:011d}", track(f"t{i}", duration=200))
                for i in range(b, min(size, b + batch))])
        projector = Projector()
        await projector.catch_up(conn)
        await conn.execute("ANALYZE")
        await conn.execute("SET synchronous_commit = off")  # as the live projector runs
        await conn.commit()
        step_ms: list[float] = []
        resum_ms: list[float] = []
        for i in range(steps):
            await append_batch(conn, [put(DID, "fm.plyr.track", f"n{i}", f"3l{i:011d}", track(f"n{i}"))])
            t0 = time.perf_counter()
            await projector.step(conn)
            step_ms.append((time.perf_counter() - t0) * 1000)
            async with conn.transaction(force_rollback=True), conn.cursor() as cur:
                t0 = time.perf_counter()
                await cur.execute(counters._ARTISTS, {"dids": [DID]})
                resum_ms.append((time.perf_counter() - t0) * 1000)
        return statistics.median(step_ms), statistics.median(resum_ms)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,10000,50000", help="the artist's catalogue sizes, comma separated")
    ap.add_argument("--plays", default="10,100000", help="the track's plays, comma separated")
    ap.add_argument("--likes", default="10,100000", help="the track's likes, comma separated")
    ap.add_argument("--steps", type=int, default=100, help="live steps (one new track, play or like each) per size")
    ap.add_argument("--database-url", default=DEFAULT_URL)
    a = ap.parse_args()
    print(await server_line(a.database_url))
    print(f"{'catalogue':>10} {'live step p50 ms':>17} {'whole-artist re-sum p50 ms':>27} {'re-sum / step':>14}")
    for size in (int(s) for s in a.sizes.split(",")):
        async with scratch_database(a.database_url, "bench_counters") as url:  # a fresh database per size
            step, resum = await one_size(url, size, a.steps)
        print(f"{size:>10,} {step:>17.2f} {resum:>27.2f} {resum / step:>13.2f}x", flush=True)
    print(f"\n{'plays':>10} {'live step p50 ms':>17} {'full play count p50 ms':>27} {'count / step':>14}")
    for plays in (int(s) for s in a.plays.split(",")):
        async with scratch_database(a.database_url, "bench_counters") as url:
            step, count = await one_popular(url, plays, a.steps, play, COUNT_PLAYS,
                                            "SELECT plays FROM track_counter WHERE uri = %(uri)s")
        print(f"{plays:>10,} {step:>17.2f} {count:>27.2f} {count / step:>13.2f}x", flush=True)
    print(f"\n{'likes':>10} {'live step p50 ms':>17} {'full like recount p50 ms':>27} {'count / step':>14}")
    for likes in (int(s) for s in a.likes.split(",")):
        async with scratch_database(a.database_url, "bench_counters") as url:
            step, count = await one_popular(url, likes, a.steps, like, counts._RECOUNT,
                                            "SELECT like_count FROM subject_count WHERE subject_uri = %(uri)s")
        print(f"{likes:>10,} {step:>17.2f} {count:>27.2f} {count / step:>13.2f}x", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
