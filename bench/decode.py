"""Firehose decode throughput: atproto SDK baseline vs `ingester.decode.frames.decode_frame`.

Generates (and caches) a synthetic dataset + `#commit` frames with gen_dataset.py / gen_frames.py, where
most frames are `app.bsky.feed.like` noise (--noise K = K noise frames per fm.plyr record on average), then
measures, in one process on one core, frames/s as the median of --repeat streaming passes (decoded objects
are dropped immediately: keeping them in a list makes the GC triple the cost):

  sdk        Frame.from_bytes + parse_subscribe_repos_message + CAR.from_bytes + car.blocks.get(op.cid)
             (what bench_sdk_firehose.py measures; what SDK firehose users write)
  ours       decode_frame(frame)                  out-of-scope frames -> Skipped without reading the CAR
  ours/all   decode_frame(frame, tracked=all DIDs) worst case: every frame fully decoded
Each pipeline is run on the mixed set and on its in-scope subset. Prints figures only (no assertions).
  /work/venv/bin/python bench/decode.py [--tracks 3000] [--noise 6] [--repeat 3] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable as `python bench/decode.py` without installing the package

from atproto import CAR, firehose_models, models, parse_subscribe_repos_message  # noqa: E402

from core.events import Commit  # noqa: E402
from ingester.decode.frames import decode_frame  # noqa: E402

Pipeline = Callable[[list[bytes]], int]


def ensure_frames(workdir: Path, tracks: int, noise: float, regen: bool) -> Path:
    """Run the generators unless a cached frames file for these arguments exists."""
    workdir.mkdir(parents=True, exist_ok=True)
    dataset = workdir / f"dataset-{tracks}.jsonl"
    frames = workdir / f"frames-{tracks}-noise{noise:g}.bin"
    here = Path(__file__).resolve().parent
    if regen or not dataset.exists():
        subprocess.run([sys.executable, str(here / "gen_dataset.py"), "--tracks", str(tracks), "-o",
                        str(dataset)], check=True)
    if regen or not frames.exists():
        tmp = frames.with_suffix(".tmp")  # never leave a half-written cache behind
        subprocess.run([sys.executable, str(here / "gen_frames.py"), str(dataset), str(tmp), "--noise",
                        str(noise)], check=True)
        tmp.rename(frames)
    return frames


def load(path: Path) -> list[bytes]:
    out: list[bytes] = []
    with path.open("rb") as f:
        while h := f.read(4):
            out.append(f.read(struct.unpack(">I", h)[0]))
    return out


def sdk(frames: list[bytes]) -> int:
    n = 0
    commit_type = models.ComAtprotoSyncSubscribeRepos.Commit
    for data in frames:
        msg = parse_subscribe_repos_message(firehose_models.Frame.from_bytes(data))
        if not isinstance(msg, commit_type) or not msg.blocks:
            continue
        car = CAR.from_bytes(msg.blocks)
        for op in msg.ops:
            if op.action == "create" and op.cid:
                rec = car.blocks.get(op.cid)
                if rec is not None and op.path.startswith("fm.plyr."):
                    n += 1
    return n


def ours(frames: list[bytes], tracked: frozenset[str] = frozenset()) -> int:
    n = 0
    for data in frames:
        ev = decode_frame(data, tracked)
        if type(ev) is Commit:
            for op in ev.ops:
                if op.record is not None:
                    n += 1
    return n


def prefilter_only(frames: list[bytes]) -> int:
    """Reference: cost of the `b"fm.plyr." in frame` scan alone (the design note in frames.py)."""
    return sum(1 for data in frames if b"fm.plyr." in data)


def measure(fn: Pipeline, frames: list[bytes], repeat: int) -> tuple[float, int]:
    rates, got = [], 0
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        got = fn(frames)
        rates.append(len(frames) / (time.perf_counter() - t))
    return statistics.median(rates), got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=3000, help="gen_dataset.py --tracks (records = ~6.1x)")
    ap.add_argument("--noise", type=float, default=6.0, help="app.bsky noise frames per fm.plyr record")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/plyr-bench-decode"))
    ap.add_argument("--regen", action="store_true", help="ignore cached dataset/frames")
    a = ap.parse_args()

    frames = load(ensure_frames(a.workdir, a.tracks, a.noise, a.regen))
    scoped = [f for f in frames if b"fm.plyr." in f]
    all_dids = frozenset(d for f in frames if (d := getattr(decode_frame(f), "did", None)) is not None)
    size = sum(map(len, frames)) / len(frames)
    print(f"python {platform.python_version()} atproto {version('atproto')} libipld {version('libipld')} "
          f"cbor2 {version('cbor2')}; {len(frames)} frames ({len(scoped)} fm.plyr, "
          f"{100 * (1 - len(scoped) / len(frames)):.1f}% app.bsky noise), {size:.0f} B avg; "
          f"median of {a.repeat}, single core")

    runs: list[tuple[str, str, Pipeline, list[bytes]]] = [
        ("sdk", "mixed", sdk, frames),
        ("ours", "mixed", ours, frames),
        ("ours/all", "mixed", lambda fr: ours(fr, all_dids), frames),
        ("sdk", "in-scope", sdk, scoped),
        ("ours", "in-scope", ours, scoped),
        ("prefilter", "mixed", prefilter_only, frames),
    ]
    results: dict[tuple[str, str], float] = {}
    print(f"{'pipeline':10s} {'set':9s} {'frames/s':>10s} {'us/frame':>9s} {'fm.plyr records':>16s}")
    for name, label, fn, data in runs:
        rate, got = measure(fn, data, a.repeat)
        results[(name, label)] = rate
        print(f"{name:10s} {label:9s} {rate:10.0f} {1e6 / rate:9.2f} {got:16d}")
    for label in ("mixed", "in-scope"):
        print(f"ratio ours/sdk ({label}): {results[('ours', label)] / results[('sdk', label)]:.1f}x")
    worst = results[("ours/all", "mixed")] / results[("sdk", "mixed")]
    print(f"ratio ours-all-tracked/sdk (mixed): {worst:.1f}x")


if __name__ == "__main__":
    main()
