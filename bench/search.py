# ruff: noqa: RUF001 — curly apostrophes in generated titles are the point
"""Search latency and throughput: the real app under uvicorn, driven by an aiohttp client.

Seeds a fresh database (migrated to head) with 100,000 tracks over 5,000 artists plus albums and
playlists, by bulk COPY into the projection tables (the generated search columns and GIN indexes
fill in as on any insert). Then, against one uvicorn worker:

  search      GET /search/?q=            all four types, 20 per type (what plyr.fm's frontend calls)
  tracks      GET /search/?q=&type=tracks
  baseline    GET /bench/plyr?q=         plyr.fm's own query shape on the same data and the same four
                                         types: `similarity(col, q) > 0.1 OR lower(translate(col)) LIKE
                                         '%q%'` with the same tiered CASE; no index can serve it.
Each is run once sequentially (latency: p50/p99) and once with --concurrency connections (req/s).
--baseline-root CHECKOUT adds a "previous" row: that checkout's app (e.g. the main branch) on the same database.
Typo recall@20 (--typos misspelt words and titles): ours, previous and plyr.fm's query, on the same data.
The query set (≥300) mixes exact titles, prefixes, typos, substrings, accent-stripped and accented,
curly/straight quotes, multiword (reordered) and artist/album names. Prints figures; asserts nothing.

  /work/venv/bin/python bench/search.py [--db-url URL] [--tracks 100000] [--artists 5000]
        [--queries 400] [--concurrency 8] [--baseline-queries 60] [--reuse]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# --baseline-root: the baseline server runs this script with another checkout's code first on the path.
ROOT = Path(os.environ.get("BENCH_CODE_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402
from fastapi import Query, Request  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402
from scratch import DEFAULT_URL, server_url  # noqa: E402

from appview.search.models import SearchCounts, SearchResponse  # noqa: E402
from core.db.urls import libpq_url  # noqa: E402

WORDS = (
    "love night blue dream light dark heart fire rain summer winter ghost moon sun star ocean river city "
    "home road gold silver glass paper echo shadow wave storm quiet loud slow fast lost found broken "
    "electric velvet neon honey wild sweet bitter cold warm midnight morning sunday friday tape radio "
    "signal static garden forest desert island mirror window door stairs tower bridge train station "
    "letter song dance drum bass guitar piano choir voice whisper scream lullaby anthem ballad remix "
    "demo live acoustic session edit version interlude outro intro reprise part theme loop"
).split()
ACCENTED = ("café", "naïve", "señorita", "über", "déjà", "vu", "résumé", "jalapeño", "fiancée", "crème",
            "brûlée", "björk", "mañana", "garçon", "éclair", "rosé", "niño", "façade", "coöperate", "smörgås")
CONTRACTIONS = ("don’t", "can’t", "i’m", "won’t", "it’s", "you’re", "don't", "can't", "i'm", "rock’n’roll")


def strip_accents(s: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))


def vocab(rng: random.Random, n: int) -> list[str]:
    cons, vows = "bcdfghjklmnprstvwz", "aeiou"
    out = list(WORDS)
    seen = set(out)
    while len(out) < n:
        w = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


class Corpus:
    def __init__(self, seed: int, tracks: int, artists: int) -> None:
        rng = random.Random(seed)
        self.rng = rng
        v = vocab(rng, 4000)
        weights = [1.0 / (r + 1) ** 0.9 for r in range(len(v))]

        def phrase(k: int) -> str:
            words = rng.choices(v, weights=weights, k=k)
            if rng.random() < 0.06:
                words[rng.randrange(k)] = rng.choice(ACCENTED)
            if rng.random() < 0.04:
                words.insert(0, rng.choice(CONTRACTIONS))
            return " ".join(words)

        self.artist_names = [phrase(rng.randint(1, 2)).title() for _ in range(artists)]
        self.handles = [f"{n.lower().replace(' ', '')[:20]}{i}.bsky.social" for i, n in enumerate(self.artist_names)]
        self.dids = [f"did:plc:bench{i:019d}" for i in range(artists)]
        self.titles = [phrase(rng.randint(1, 5)) for _ in range(tracks)]
        self.owner = [rng.randrange(artists) for _ in range(tracks)]
        self.albums = [(rng.randrange(artists), phrase(rng.randint(1, 3))) for _ in range(tracks // 12)]
        self.playlists = [(rng.randrange(artists), phrase(rng.randint(1, 3))) for _ in range(tracks // 20)]

    def queries(self, n: int) -> list[tuple[str, str]]:
        rng, out = self.rng, list[tuple[str, str]]()
        kinds = ["exact", "prefix", "typo", "substring", "accent", "multiword", "artist", "album", "quote"]
        while len(out) < n:
            kind = kinds[len(out) % len(kinds)]
            title = rng.choice(self.titles)
            words = title.split()
            q = ""
            if kind == "exact":
                q = title
            elif kind == "prefix":
                q = title[: rng.randint(3, max(3, min(12, len(title))))]
            elif kind == "typo":
                w = max(words, key=len)
                if len(w) < 5:
                    continue
                i = rng.randrange(1, len(w) - 1)
                q = rng.choice([w[:i] + w[i + 1:], w[:i] + rng.choice("aeiourst") + w[i + 1:],
                                w[:i] + rng.choice("aeiou") + w[i:]])
            elif kind == "substring":
                if len(words) < 2:
                    continue
                q = " ".join(words[1:3])
            elif kind == "accent":
                acc = [t for t in self.titles[:20000] if any(a in t for a in ACCENTED)]
                t = rng.choice(acc)
                q = t if rng.random() < 0.5 else strip_accents(t)
            elif kind == "multiword":
                if len(words) < 3:
                    continue
                q = f"{words[2]} {words[0]}"
            elif kind == "artist":
                q = rng.choice(self.artist_names)
                q = q if rng.random() < 0.5 else q.lower()[: max(3, len(q) - 2)]
            elif kind == "album":
                q = rng.choice(self.albums)[1]
            elif kind == "quote":
                t = rng.choice([t for t in self.titles[:30000] if "’" in t or "'" in t])
                q = t.replace("’", "'") if "’" in t else t.replace("'", "’")
            q = q.strip()[:100]
            if len(q) >= 2:
                out.append((kind, q))
        return out

    def typos(self, n: int) -> list[tuple[str, str, str]]:
        """(kind, misspelt query, what it means): one letter dropped, swapped, changed or added, in the longest
        word of a title (`word`: meant = that word) or in a whole title of 2-6 words (`title`: meant = it)."""
        rng, out = random.Random(7), list[tuple[str, str, str]]()
        while len(out) < n:
            i = rng.randrange(len(self.titles))
            if i % 97 == 0:
                continue  # self-labelled adult (see `seed`): hidden from search, a miss by design
            title = self.titles[i]
            words = title.split()
            j = max(range(len(words)), key=lambda k: len(words[k]))
            w = words[j]
            if len(w) < 5 or not w.isalpha():
                continue
            k = rng.randrange(1, len(w) - 2)
            typo = rng.choice([w[:k] + w[k + 1:], w[:k] + w[k + 1] + w[k] + w[k + 2:],
                               w[:k] + rng.choice("aeiourst") + w[k + 1:], w[:k] + rng.choice("aeiou") + w[k:]])
            if typo == w:
                continue
            if len(out) % 2 == 0:
                out.append(("word", typo, w))
            elif 2 <= len(words) <= 6:
                out.append(("title", " ".join([*words[:j], typo, *words[j + 1:]]), title))
        return out


async def _copy(cur: psycopg.AsyncCursor, table: str, rows: list[dict[str, Any]]) -> None:
    """COPY rows into a projection table; a NOT NULL column this script doesn't know (added by a later
    migration) fails loudly, except the read side's `sort_at`, which takes `indexed_at`."""
    await cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_nullable = 'NO'"
        " AND column_default IS NULL AND is_generated = 'NEVER'", (table,))
    required = {r[0] for r in await cur.fetchall()}
    cols = list(rows[0])
    if "sort_at" in required and "sort_at" not in cols:
        cols.append("sort_at")
        for r in rows:
            r["sort_at"] = r["indexed_at"]
    missing = required - set(cols)
    if missing:
        raise SystemExit(f"bench/search.py: {table} has new NOT NULL columns {sorted(missing)}; teach _copy")
    async with cur.copy(f'COPY "{table}" ({", ".join(cols)}) FROM STDIN') as cp:
        for r in rows:
            await cp.write_row([r[c] for c in cols])


async def seed(url: str, c: Corpus) -> None:
    t0 = time.monotonic()
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.cursor() as cur:
        await _copy(cur, "actor", [{"did": d, "handle": h, "status": "active", "active": True, "seq": i}
                                   for i, (d, h) in enumerate(zip(c.dids, c.handles, strict=True))])
        tracks = []
        for i, (title, owner) in enumerate(zip(c.titles, c.owner, strict=True)):
            at = now + timedelta(seconds=i)
            rkey = f"3k{i:011d}"
            labels = ["porn"] if i % 97 == 0 else []
            tracks.append({
                "id": i + 1, "uri": f"at://{c.dids[owner]}/fm.plyr.track/{rkey}", "did": c.dids[owner],
                "rkey": rkey, "cid": f"bafyreibench{i}", "rev": rkey, "title": title,
                "artist": c.artist_names[owner], "album": None, "file_type": "mp3",
                "image_url": None, "features": Jsonb([]), "self_labels": Jsonb(labels),
                "created_at": at.isoformat().replace("+00:00", "Z"), "indexed_at": at, "record": Jsonb({}),
            })
        await _copy(cur, "track", tracks)
        lists = []
        for j, (owner, name) in enumerate([(o, n) for o, n in c.albums] + [(o, n) for o, n in c.playlists]):
            kind = "album" if j < len(c.albums) else "playlist"
            rkey = f"3l{j:011d}"
            lists.append({"id": 10_000_000 + j, "uri": f"at://{c.dids[owner]}/fm.plyr.list/{rkey}",
                          "did": c.dids[owner], "rkey": rkey, "cid": f"bafyreilist{j}", "name": name,
                          "list_type": kind, "item_count": 1 + j % 12,
                          "created_at": now.isoformat().replace("+00:00", "Z"), "indexed_at": now})
        await _copy(cur, "list", lists)
        await conn.commit()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("VACUUM ANALYZE")
    print(f"seeded {len(c.titles):,} tracks, {len(c.dids):,} artists, {len(c.albums):,} albums, "
          f"{len(c.playlists):,} playlists in {time.monotonic() - t0:.1f}s")


def serve(url: str, port: int) -> None:
    """The real app plus one baseline route, in this process (run as a subprocess by main)."""
    import uvicorn

    from appview.app import create_app
    from appview.settings import AppviewSettings

    app = create_app(AppviewSettings(), url)
    quote_from, quote_to = "’‘“”", "''\"\""

    def shape(col: str, table: str, extra: str = "") -> str:
        n = f"lower(translate({col}, '{quote_from}', '{quote_to}'))"
        ws = f"word_similarity(%(qn)s, {n})"
        rel = (f"CASE WHEN {n} = %(qn)s THEN 5.0 WHEN {n} LIKE %(prefix)s THEN 3.0 + {ws} "
               f"WHEN {n} LIKE %(sub)s THEN 1.5 + {ws} ELSE {ws} END")
        return (f"SELECT {rel} AS r FROM {table} WHERE (similarity({col}, %(q)s) > 0.1 OR {n} LIKE %(sub)s)"
                f" {extra} ORDER BY r DESC LIMIT 20")

    plyr_titles = shape("t.title", "track t").replace("SELECT ", "SELECT t.title, ", 1)
    plyr_sql = [shape("t.title", "track t"), shape("a.handle", "actor a"),
                shape("l.name", "list l", "AND l.list_type = 'album'"),
                shape("l.name", "list l", "AND l.list_type = 'playlist'")]

    @app.get("/bench/plyr")
    async def plyr_shape(request: Request, q: str = Query(...)) -> SearchResponse:
        qn = q.translate(str.maketrans(quote_from, quote_to)).lower().strip()
        esc = qn.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params = {"q": q, "qn": qn, "prefix": esc + "%", "sub": "%" + esc + "%"}
        counts = SearchCounts()
        async with request.app.state.pool.connection() as conn:
            for i, sql in enumerate(plyr_sql):
                n = len(await (await conn.execute(sql, params)).fetchall())
                if i == 0:
                    counts.tracks = n
        return SearchResponse(results=[], counts=counts)

    @app.get("/bench/plyr/titles")
    async def plyr_track_titles(request: Request, q: str = Query(...)) -> list[str]:
        qn = q.translate(str.maketrans(quote_from, quote_to)).lower().strip()
        esc = qn.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params = {"q": q, "qn": qn, "prefix": esc + "%", "sub": "%" + esc + "%"}
        async with request.app.state.pool.connection() as conn:
            return [r[0] for r in await (await conn.execute(plyr_titles, params)).fetchall()]

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools")


async def drive(base: str, path: str, queries: list[str], concurrency: int, extra: dict[str, str]
                ) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    it = iter(queries)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for q in it:
            t = time.perf_counter()
            async with session.get(base + path, params={"q": q, **extra}) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t)

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, len(latencies) / elapsed, errors


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] * 1000


async def run(args: argparse.Namespace) -> None:
    admin = libpq_url(server_url(args.db_url))
    url = admin.rsplit("/", 1)[0] + "/" + args.db_name
    corpus = Corpus(args.seed, args.tracks, args.artists)
    if not args.reuse:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{args.db_name}"')
        from core.db.migrate import upgrade

        upgrade(url)
        await seed(url, corpus)
    mixed = corpus.queries(args.queries)
    queries = [q for _, q in mixed]
    typos = corpus.typos(args.typos)
    servers = {"ours": start_server(url, str(ROOT))}
    if args.baseline_root:
        servers["previous"] = start_server(url, args.baseline_root)
    try:
        for _, base in servers.values():
            await ready(base)
            await drive(base, "/search/", queries[:50], 1, {})  # warm: connections, prepared plans, caches
        base = servers["ours"][1]
        print(f"queries: {len(queries)} ({', '.join(sorted({k for k, _ in mixed}))}); one uvicorn worker per server;"
              f" load average {os.getloadavg()[0]:.2f}")
        if args.baseline_root:
            print(f"previous = the same app from {args.baseline_root}, on the same database, same run")
        print(f"{'surface':<38} {'conc':>4} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>6}")
        runs = [("GET /search/ (all types)", base, "/search/", queries, {}),
                ("GET /search/?type=tracks", base, "/search/", queries, {"type": "tracks"})]
        if "previous" in servers:
            runs.append(("previous: GET /search/ (all types)", servers["previous"][1], "/search/", queries, {}))
        runs.append(("baseline: plyr.fm query shape", base, "/bench/plyr", queries[: args.baseline_queries], {}))
        figures = {}
        by_kind: dict[str, list[float]] = {}
        for label, host, path, qs, extra in runs:
            for conc in (1, args.concurrency):
                lat, rps, errors = await drive(host, path, qs, conc, extra)
                figures[(label, conc)] = (_pct(lat, 50), _pct(lat, 99), rps)
                print(f"{label:<38} {conc:>4} {len(lat):>5} {_pct(lat, 50):>8.2f} {_pct(lat, 99):>8.2f} "
                      f"{rps:>8.0f} {errors:>6}")
                if label == runs[0][0] and conc == 1:  # sequential: latencies in query order
                    for (kind, _), t in zip(mixed, lat, strict=True):
                        by_kind.setdefault(kind, []).append(t)
        if "previous" in servers:
            await paired(base, servers["previous"][1], queries)
        ours = figures[(runs[0][0], 1)]
        for label, *_ in runs[2:]:
            other = figures[(label, 1)]
            print(f"ratio ({label.split(':')[0]} / ours, sequential): p50 {other[0] / ours[0]:.2f}x, "
                  f"p99 {other[1] / ours[1]:.2f}x")
        print("per kind (all types, sequential) p50/p99 ms: " + ", ".join(
            f"{k} {_pct(v, 50):.1f}/{_pct(v, 99):.1f}" for k, v in sorted(by_kind.items())))
        await typo_recall(servers, typos)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)


def start_server(url: str, code_root: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"PYTHONPATH": code_root, "BENCH_CODE_ROOT": code_root}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", url, "--port", str(port)], env=env)
    return proc, f"http://127.0.0.1:{port}"


async def ready(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(base + "/ready") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{base}: not ready")


async def paired(ours: str, previous: str, queries: list[str]) -> None:
    """Sequential, query by query on both servers in alternating order: load drifting on a shared machine
    weighs on both alike (the separate runs above follow each other)."""
    lat: dict[str, list[float]] = {ours: [], previous: []}
    async with aiohttp.ClientSession() as session:
        for i, q in enumerate(queries):
            for base in (ours, previous) if i % 2 == 0 else (previous, ours):
                t = time.perf_counter()
                # `paired` keeps these URLs apart from the runs above: the response cache has not seen them
                async with session.get(base + "/search/", params={"q": q, "paired": "1"}) as r:
                    await r.read()
                lat[base].append(time.perf_counter() - t)
    a, b = lat[ours], lat[previous]
    print(f"paired, sequential, all types: ours p50 {_pct(a, 50):.2f} p99 {_pct(a, 99):.2f} ms; previous p50 "
          f"{_pct(b, 50):.2f} p99 {_pct(b, 99):.2f} ms; previous / ours p50 {_pct(b, 50) / _pct(a, 50):.2f}x, "
          f"p99 {_pct(b, 99) / _pct(a, 99):.2f}x")


async def typo_recall(servers: dict[str, tuple[subprocess.Popen[bytes], str]], typos: list[tuple[str, str, str]]
                      ) -> None:
    """Recall@20 over tracks: a misspelt word counts as found when a title holding that word is on the first page,
    a misspelt title when that title is; ours (and the previous code) beside plyr.fm's query on the same data."""
    def found(kind: str, meant: str, titles: list[str]) -> bool:
        return any(meant in t.split() for t in titles) if kind == "word" else meant in titles

    hits: dict[str, dict[str, int]] = {}
    lat: dict[str, list[float]] = {}
    lost: list[str] = []
    async with aiohttp.ClientSession() as session:
        for kind, q, meant in typos:
            got: dict[str, bool] = {}
            for name, (_, base) in [*servers.items(), ("plyr.fm", ("", servers["ours"][1]))]:
                path, params = (("/bench/plyr/titles", {"q": q}) if name == "plyr.fm"
                                else ("/search/", {"q": q, "type": "tracks", "limit": "20"}))
                t = time.perf_counter()
                async with session.get(base + path, params=params) as r:
                    body = await r.json()
                lat.setdefault(name, []).append(time.perf_counter() - t)
                titles = body if name == "plyr.fm" else [x["title"] for x in body["results"]]
                got[name] = found(kind, meant, titles)
                hits.setdefault(name, {}).setdefault(kind, 0)
                hits[name][kind] += got[name]
            if got["plyr.fm"] and not got["ours"]:
                lost.append(q)
    n = {k: sum(1 for t in typos if t[0] == k) for k in ("word", "title")}
    print(f"\ntypo recall@20 over tracks ({n['word']} misspelt words, {n['title']} misspelt titles of 2-6 words):")
    for name, h in hits.items():
        print(f"  {name:<9} words {h['word']}/{n['word']}, titles {h['title']}/{n['title']}; "
              f"tracks-only latency p50 {_pct(lat[name], 50):.1f}, p99 {_pct(lat[name], 99):.1f} ms")
    print(f"  found by plyr.fm's query and not by ours: {len(lost)}" + (f" (e.g. {lost[:5]})" if lost else ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", "--db-url", dest="db_url", default=DEFAULT_URL)
    p.add_argument("--db-name", default="bench_search")
    p.add_argument("--tracks", type=int, default=100_000)
    p.add_argument("--artists", type=int, default=5_000)
    p.add_argument("--queries", type=int, default=400)
    p.add_argument("--baseline-queries", type=int, default=60)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--typos", type=int, default=200, help="misspelt queries for the recall comparison")
    p.add_argument("--baseline-root", default="", help="another checkout (e.g. the main branch's): its app serves "
                   "the same database beside ours, for a same-run 'previous' row")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--reuse", action="store_true", help="keep the seeded database of a previous run")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
