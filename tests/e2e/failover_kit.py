"""Helpers for the failover tests: `appview ingest` processes on one database, a writer against the real
PDS that counts every record event it causes, and the checks that nothing was lost or appended twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from cli.supervise import free_port
from core.db.connect import connect
from ingester.projection.digest import digest
from ingester.projection.rebuild import rebuild
from tests.localnet.peer import Account, Localnet, Xrpc

NOW = "2026-11-24T12:00:00.000Z"
TRACK = "fm.plyr.track"


class IngestProcess:
    """One `appview ingest` (a subprocess, as an operator runs it), logging JSON to a file."""

    def __init__(self, db_url: str, localnet: Localnet, log_dir: Path, name: str, **env: str) -> None:
        self.name, self.metrics_port = name, free_port()
        self.log_path = log_dir / f"ingest-{name}.log"
        self.env = dict(os.environ, DATABASE_URL=db_url, FIREHOSE_HOSTS=localnet.ws_url, PLC_URL=localnet.plc_url,
                        LABELERS="", JETSTREAM_URLS="", BLOB_MIRROR="false",
                        METRICS_PORT=str(self.metrics_port), HOST="127.0.0.1", LOG_FORMAT="json",
                        LOG_LEVEL="info", APPVIEW_DATA_DIR=str(log_dir), INGEST_BATCH_MAX="50", **env)
        self.env.pop("PGAPPNAME", None)
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "ingest", env=self.env,
                                                             stdout=out, stderr=out)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def owns(self, instance: str) -> bool:
        """Whether `instance` (host:pid:nonce) is this process."""
        return instance.split(":")[1:2] == [str(self.pid)]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    async def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    async def metric(self, name: str) -> float | None:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None


async def lease(db_url: str) -> tuple[int, str | None]:
    async with await connect(db_url, autocommit=True) as c:
        row = await (await c.execute("SELECT epoch, holder FROM ingest_lease WHERE name = 'ingest'")).fetchone()
    assert row is not None
    return int(row[0]), row[1]


async def roles(db_url: str) -> dict[str, str]:
    async with await connect(db_url, autocommit=True) as c:
        rows = await (await c.execute("SELECT instance, role FROM ingest_instance")).fetchall()
    return {i: r for i, r in rows}


async def leader_of(db_url: str, procs: list[IngestProcess], *, after_epoch: int = 0,
                    timeout: float = 60.0) -> tuple[IngestProcess, int, float]:
    """Wait until a process leads with an epoch > `after_epoch`: (it, its epoch, seconds waited)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        epoch, holder = await lease(db_url)
        if epoch > after_epoch and holder is not None:
            for p in procs:
                if p.owns(holder):
                    return p, epoch, time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"no new leader within {timeout} s (lease {await lease(db_url)})")


async def until_role(db_url: str, proc: IngestProcess, role: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(proc.owns(i) and r == role for i, r in (await roles(db_url)).items()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{proc.name} never became {role}: {await roles(db_url)}")


class Writer:
    """Creates, updates and deletes tracks on the real PDS in a loop; knows every record event it caused."""

    def __init__(self, xrpc: Xrpc, accounts: list[Account]) -> None:
        self.xrpc, self.accounts = xrpc, accounts
        self.ops = 0  # one record event each
        self.caused: list[tuple[str, str, str, str]] = []  # (did, rkey, rev, action) of each, for diagnosis
        self.live: dict[str, str] = {}  # uri → title
        self.stop = asyncio.Event()
        self._progress = asyncio.Condition()

    async def reached(self, ops: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: self.ops >= ops)

    async def _count(self, did: str, rkey: str, made: dict[str, Any], action: str) -> None:
        self.caused.append((did, rkey, str(made.get("commit", {}).get("rev")), action))
        self.ops += 1
        async with self._progress:
            self._progress.notify_all()

    async def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            a = self.accounts[i % len(self.accounts)]
            title = f"t{i} {uuid.uuid4().hex[:4]}"
            made = await self.xrpc.create(a, TRACK, track(title))
            self.live[made["uri"]] = title
            rkey = made["uri"].rsplit("/", 1)[1]
            await self._count(a.did, rkey, made, "create")
            if i % 3 == 2:  # an update
                title += " (edit)"
                put = await self.xrpc.put(a, TRACK, rkey, track(title))
                self.live[made["uri"]] = title
                await self._count(a.did, rkey, put, "update")
            if i % 5 == 4:  # a delete of the oldest of this account's tracks
                victim = next(u for u in self.live if f"/{a.did}/" in u)
                gone = await self.xrpc.delete(a, TRACK, victim.rsplit("/", 1)[1])
                del self.live[victim]
                await self._count(a.did, victim.rsplit("/", 1)[1], gone, "delete")
            i += 1


def track(title: str) -> dict[str, Any]:
    return {"$type": TRACK, "title": title, "artist": "Failover", "fileType": "mp3",
            "audioUrl": f"https://audio.plyr.fm/{uuid.uuid4().hex[:8]}.mp3", "createdAt": NOW}


async def assert_exactly_once(db_url: str, writer: Writer, timeout: float = 90.0) -> None:
    """Every record event the writer caused is in the log exactly once (whoever led), and the projections show
    its live tracks.

    A new account's first `#account`/`#identity` starts a resync of its repo (discovery), which may run after
    the writer's first commits: the snapshot diff logs them as `backfill` events at the snapshot's rev, and the
    firehose commits at or below that rev are absorbed by the rev check. So an event at or below its repo's
    resync rev is covered by the resync (collapsed into the diff when the record changed again before the
    snapshot); every later one must be a firehose row. Seen in CI: a brand-new account's first create logged
    by the resync at exactly that create's rev."""
    dids = [a.did for a in writer.accounts]
    deadline = time.monotonic() + timeout
    async with await connect(db_url, autocommit=True) as c:
        while True:
            absent = await _absent(c, writer)
            tracks = await (await c.execute("SELECT uri, title FROM track WHERE did = ANY(%s)", (dids,))).fetchall()
            if (not absent and dict(tracks) == writer.live) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        missing = [await _explain(c, *event) for event in absent]
        doubles = await (await c.execute(
            "SELECT did, rkey, rev, action, array_agg(verified || '/' || source ORDER BY seq)"
            " FROM record_event WHERE did = ANY(%s) AND collection = %s GROUP BY 1, 2, 3, 4 HAVING count(*) > 1",
            (dids, TRACK))).fetchall()
        firehose = await (await c.execute(
            "SELECT count(*) FROM record_event WHERE did = ANY(%s) AND collection = %s AND source LIKE 'firehose:%%'",
            (dids, TRACK))).fetchone()
    assert not doubles, f"an event was appended twice: {doubles}"
    assert not missing, f"the log lacks {len(missing)} of the writer's {writer.ops} record events: {missing}"
    assert firehose is not None and firehose[0] <= writer.ops
    assert dict(tracks) == writer.live


async def _absent(c: Any, writer: Writer) -> list[tuple[str, str, str, str]]:
    """The writer's events neither in the log as a firehose row nor covered by a resync of their repo (see
    `assert_exactly_once`): two queries, whatever the number of events."""
    dids = sorted({did for did, *_ in writer.caused})
    logged = {tuple(r) for r in await (await c.execute(
        "SELECT did, rkey, rev, action FROM record_event WHERE did = ANY(%s) AND collection = %s"
        " AND source LIKE 'firehose:%%'", (dids, TRACK))).fetchall()}
    resynced = dict(await (await c.execute(
        "SELECT did, max(rev) FROM repo_event WHERE did = ANY(%s) AND kind = 'resync' GROUP BY did",
        (dids,))).fetchall())
    return [e for e in writer.caused if e not in logged and not (e[0] in resynced and e[2] <= resynced[e[0]])]


async def _explain(c: Any, did: str, rkey: str, rev: str, action: str) -> dict[str, Any]:
    """A missing event with every log row of its record and its repo's events: enough to tell a lost event from
    anything else."""
    rows = await (await c.execute(
        "SELECT seq, rev, action, source, source_seq, verified, rejected FROM record_event"
        " WHERE did = %s AND collection = %s AND rkey = %s ORDER BY seq", (did, TRACK, rkey))).fetchall()
    repo = await (await c.execute(
        "SELECT seq, kind, rev, source, source_seq, left(payload::text, 200) FROM repo_event"
        " WHERE did = %s ORDER BY seq", (did,))).fetchall()
    return {"event": (did, rkey, rev, action), "log": rows, "repo_events": repo}


async def assert_projections_equal_a_rebuild(db_url: str) -> None:
    async with await connect(db_url) as conn:
        live = await digest(conn)
        await conn.commit()
        await rebuild(db_url, show_progress=False)
        rebuilt = await digest(conn)
        assert rebuilt.sha256 == live.sha256, f"live:\n{live.render()}\nrebuilt:\n{rebuilt.render()}"
