"""Backfill against a PDS and PLC that misbehave: garbage CARs, 429 + Retry-After, a hang, a DID that does
not resolve, a forged snapshot, a handle that points elsewhere. Each one is handled, logged and visible in
/status; the rest of the backfill carries on, and a second run skips what is done.

The peer is a small Starlette app on a real socket (PLC routes `/{did}` and the PDS's XRPC routes); repos
are real signed MSTs from `framekit`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import coincurve
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from appview.status import read_status
from core.db.connect import connect
from ingester.service import backfill_once
from ingester.settings import IngesterSettings
from tests.e2e.backfill_kit import project
from tests.e2e.conftest import Query
from tests.ingester.framekit import Mst, Net, Repo, car, cid_of, record_block, track
from tests.localnet.peer import free_port


def snapshot(repo: Repo, records: dict[str, dict[str, Any]], key: coincurve.PrivateKey | None = None) -> bytes:
    """A getRepo CAR: signed commit, every MST node, every record block."""
    blocks = {p: record_block(r) for p, r in records.items()}
    mst = Mst({p: cid_of(b) for p, b in blocks.items()})
    ccid, cblock = repo._commit_block(repo.net.next_tid(), mst.root, key)
    return car([ccid], [(ccid, cblock), *mst.blocks.items(), *((cid_of(b), b) for b in blocks.values())])


class FaultyPeer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.net = Net()
        self.docs: dict[str, dict[str, Any]] = {}
        self.cars: dict[str, bytes] = {}
        self.behaviour: dict[str, str] = {}
        self.handles: dict[str, str] = {}  # handle → DID the PDS answers for it
        self.requests: Counter[str] = Counter()

    def add(self, name: str, behaviour: str, *, publish: bool = True, handle_to: str | None = None) -> Repo:
        repo = self.net.repo(f"{name}.test")
        doc = repo.doc()
        doc["service"][0]["serviceEndpoint"] = self.url
        if publish:
            self.docs[repo.did] = doc
        key = coincurve.PrivateKey() if behaviour == "forged" else None
        self.cars[repo.did] = snapshot(repo, {f"fm.plyr.track/3kaaaaaaaa{c}22": track(f"{name} {c}") for c in "ab"},
                                       key)
        self.behaviour[repo.did] = behaviour
        self.handles[repo.handle] = handle_to or repo.did
        return repo

    async def plc(self, request: Request) -> Response:
        doc = self.docs.get(request.path_params["did"])
        return JSONResponse(doc) if doc else JSONResponse({"message": "DID not registered"}, 404)

    async def get_repo(self, request: Request) -> Response:
        did = request.query_params.get("did", "")
        self.requests[did] += 1
        behaviour = self.behaviour.get(did)
        if behaviour == "garbage":
            return Response(b"\x0a\xa1this is not a CAR at all", media_type="application/vnd.ipld.car")
        if behaviour == "429-once" and self.requests[did] == 1:
            return Response("slow down", 429, headers={"Retry-After": "1"})
        if behaviour == "hang":
            await asyncio.sleep(30)
        if did not in self.cars:
            return JSONResponse({"error": "RepoNotFound", "message": "Could not find repo"}, 400)
        return Response(self.cars[did], media_type="application/vnd.ipld.car")

    async def resolve_handle(self, request: Request) -> Response:
        did = self.handles.get(request.query_params.get("handle", ""))
        return JSONResponse({"did": did}) if did else JSONResponse({"error": "InvalidRequest"}, 400)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FaultyPeer]:
        app = Starlette(routes=[
            Route("/xrpc/com.atproto.sync.getRepo", self.get_repo),
            Route("/xrpc/com.atproto.identity.resolveHandle", self.resolve_handle),
            Route("/{did}", self.plc),
        ])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                               lifespan="off", timeout_graceful_shutdown=1))
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn exposes a flag, not an event)
            await asyncio.sleep(0.02)
        try:
            yield self
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)


async def test_each_fault_is_handled_and_the_rest_carries_on(db_url: str, q: Query) -> None:
    peer = FaultyPeer()
    good = peer.add("good", "good")
    slow = peer.add("slow", "429-once")
    garbage = peer.add("garbage", "garbage")
    hang = peer.add("hang", "hang")
    ghost = peer.add("ghost", "good", publish=False)
    forged = peer.add("forged", "forged")
    liar = peer.add("liar", "good", handle_to=good.did)  # its handle resolves to somebody else
    settings = IngesterSettings(database_url=db_url, plc_url=peer.url, backfill_timeout_s=1, backfill_attempts=2)
    dids = [r.did for r in (good, slow, garbage, hang, ghost, forged, liar)]

    async with peer.running():
        counters = await backfill_once(settings, db_url, dids=dids, progress=False)
        assert (counters.done, counters.failed) == (3, 4)
        failures = counters.failures
        assert set(failures) == {garbage.did, hang.did, ghost.did, forged.did}
        assert failures[hang.did] == "getRepo: timeout"
        assert failures[forged.did] == "commit signature does not verify (after a DID document refresh)"
        assert counters.failures[garbage.did].startswith("bad repo: not a CAR")
        assert counters.failures[ghost.did].startswith("DID does not resolve: not_found")
        assert peer.requests[slow.did] == 2  # 429, then served after Retry-After

        # A second run skips the repos that are done and retries the failed ones.
        peer.behaviour[garbage.did] = "good"
        again = await backfill_once(settings, db_url, progress=False)
        assert (again.done, again.failed) == (1, 3)
        assert peer.requests[good.did] == 1 and peer.requests[garbage.did] == 2

    await project(db_url)
    assert await q("SELECT did, count(*) FROM track GROUP BY did ORDER BY did") == sorted(
        [(r.did, 2) for r in (good, slow, liar, garbage)])
    handles = dict(await q("SELECT did, handle FROM actor"))
    assert handles[good.did] == "good.test" and handles[liar.did] == "handle.invalid"

    async with await connect(db_url) as conn:
        status = await read_status(conn)
    assert status.backfill.jobs == {"done": 4, "failed": 3}
    reasons = {f.did: f.error for f in status.backfill.failures}
    assert reasons[hang.did] == "getRepo: timeout" and reasons[forged.did].startswith("commit signature")
    assert {f.did: f.attempts for f in status.backfill.failures}[hang.did] == 2
    assert status.backfill.per_pds[peer.url]["done"] == 4


async def test_the_backfill_command(db_url: str, q: Query) -> None:
    peer = FaultyPeer()
    good, garbage = peer.add("good", "good"), peer.add("garbage", "garbage")
    env = dict(os.environ, DATABASE_URL=db_url, PLC_URL=peer.url, LOG_FORMAT="json", LOG_LEVEL="warning")
    async with peer.running():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "backfill", "--did", good.did, "--did", garbage.did, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    lines = out.decode().splitlines()
    assert proc.returncode == 1, err.decode()[-2000:]  # something failed: a non-zero exit for scripts
    assert lines[0] == "backfill: 1 repos done, 1 failed, 2 records, 2 changes written"
    assert lines[1].startswith(f"  failed {garbage.did}: bad repo: not a CAR")
    assert await q("SELECT did, status FROM backfill_job ORDER BY status") == [(good.did, "done"),
                                                                               (garbage.did, "failed")]
