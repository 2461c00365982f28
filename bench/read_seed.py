"""Seed a read-side benchmark world through the ingester's own write path (append_batch + projector):
artists with profiles, tracks, likes (Zipf-skewed over tracks), comments, albums."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.db.connect import connect  # noqa: E402
from core.events import RecordEvent, RepoEvent  # noqa: E402
from ingester.eventlog.append import append_batch  # noqa: E402
from ingester.projection.runner import Projector  # noqa: E402

ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
WORDS = ("late night drive bufo season tidepool blue hour static bloom glass river slow motion paper moon echo "
         "quiet storm neon garden lost signal velvet tape distant shore amber light hollow sky").split()


def tid(n: int) -> str:
    out = ""
    for _ in range(11):
        out = ALPHABET[n % 32] + out
        n //= 32
    return "3l" + out


def did(kind: str, i: int) -> str:
    return f"did:plc:{kind}{i:0{24 - len(kind)}d}"


def stamp(i: int, total: int) -> str:
    day = 1 + (i * 27) // max(total, 1)
    return f"2026-10-{day:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i % 1000:03d}Z"


class Gen:
    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.n = 0

    def rev(self) -> str:
        self.n += 1
        return tid(self.n)

    def put(self, who: str, collection: str, record: dict, rkey: str | None = None) -> tuple[RecordEvent, str]:
        rev = self.rev()
        key = rkey or rev
        return (RecordEvent(did=who, collection=collection, rkey=key, rev=rev, action="create",
                            cid=f"bafyrei{self.n:052d}", record=record, source="bench", source_seq=None,
                            verified=True), f"at://{who}/{collection}/{key}")


def world(artists: int, tracks: int, likes: int, comments: int, fans: int):  # noqa: ANN201
    """Yields batches of events (identity first, so every author has an actor row)."""
    g = Gen()
    ids = [did("art", i) for i in range(artists)] + [did("fan", i) for i in range(fans)]
    yield [RepoEvent(did=d, kind="identity", payload={"handle": f"{d[8:]}.test", "pds": "https://pds.example",
                                                       "signing_key": "did:key:z"}, source="bench") for d in ids]
    batch: list[RecordEvent] = []
    for i in range(artists):
        batch.append(g.put(ids[i], "fm.plyr.actor.profile", {"$type": "fm.plyr.actor.profile", "bio": "bio",
                     "avatar": f"https://cdn.example/{i}.jpg", "createdAt": stamp(i, artists)}, "self")[0])
    uris: list[str] = []
    for i in range(tracks):
        a = ids[i % artists]
        title = " ".join(g.rng.choice(WORDS) for _ in range(g.rng.randint(1, 4)))
        rec = {"$type": "fm.plyr.track", "title": title, "artist": f"artist {i % artists}", "fileType": "mp3",
               "audioUrl": f"https://audio.plyr.fm/audio/{i:016x}.mp3", "duration": 60 + i % 240,
               "imageUrl": f"https://images.plyr.fm/images/{i:016x}.jpg", "createdAt": stamp(i, tracks)}
        if i % 7 == 0:
            rec["features"] = [{"did": ids[(i + 1) % artists], "handle": "x.test"}]
        ev, u = g.put(a, "fm.plyr.track", rec)
        batch.append(ev)
        uris.append(u)
        if len(batch) >= 20000:
            yield batch
            batch = []
    for i in range(0, tracks, 10 * 20):  # albums of 10 tracks for every 20th artist-slot
        items = [{"subject": {"uri": uris[j], "cid": "bafyreiaaaa"}} for j in range(i, min(i + 10, tracks))]
        batch.append(g.put(uris[i][5:].split("/")[0], "fm.plyr.list", {"$type": "fm.plyr.list", "name": f"album {i}",
                     "listType": "album", "items": items, "createdAt": stamp(i, tracks)})[0])
    for i in range(likes):
        t = min(int(g.rng.paretovariate(1.2)) - 1, tracks - 1)  # Zipf-ish: a few tracks are very liked
        subject = uris[(t * 7919) % tracks] if t else uris[g.rng.randrange(tracks)]
        batch.append(g.put(ids[g.rng.randrange(len(ids))], "fm.plyr.like",
                           {"$type": "fm.plyr.like", "subject": {"uri": subject, "cid": "bafyreiaaaa"},
                            "createdAt": stamp(i, likes)})[0])
        if len(batch) >= 20000:
            yield batch
            batch = []
    for i in range(comments):
        batch.append(g.put(ids[g.rng.randrange(len(ids))], "fm.plyr.comment",
                           {"$type": "fm.plyr.comment", "subject": {"uri": uris[g.rng.randrange(tracks)],
                            "cid": "bafyreiaaaa"}, "text": "this drop is unreal", "timestampMs": i % 200000,
                            "createdAt": stamp(i, comments)})[0])
        if len(batch) >= 20000:
            yield batch
            batch = []
    if batch:
        yield batch


async def seed(url: str, artists: int, tracks: int, likes: int, comments: int) -> float:
    t0 = time.perf_counter()
    n = 0
    async with await connect(url) as conn:
        for batch in world(artists, tracks, likes, comments, fans=artists * 3):
            await append_batch(conn, batch)
            n += len(batch)
            print(f"\r  appended {n:,} events", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        done = [0]

        def progress(k: int) -> None:
            done[0] += k
            print(f"\r  projected {done[0]:,} events", end="", file=sys.stderr, flush=True)

        await Projector(batch_size=20000).catch_up(conn, progress=progress)
        print(file=sys.stderr)
        await conn.execute("ANALYZE")
        await conn.commit()
    return time.perf_counter() - t0
