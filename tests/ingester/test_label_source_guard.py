"""A labeler's endpoint comes from its (untrusted) DID document: the outbound guard checks it before the
websocket connects, and the websocket connects to the address that was checked."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from prometheus_client import REGISTRY

from core.identity import IdentityResolver
from core.outbound import Outbound
from ingester.sources.labels import LabelResult, LabelSource
from tests.hostile.http_hosts import serve

LABELER = "did:plc:labelerlabelerlabelerlab"


def doc(endpoint: str) -> dict[str, Any]:
    return {"id": LABELER, "service": [{"id": "#atproto_labeler", "type": "AtprotoLabeler",
                                         "serviceEndpoint": endpoint}]}


def resolver(endpoint: str, **kw: Any) -> IdentityResolver:
    def plc(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=doc(endpoint))

    return IdentityResolver("https://plc.test", client=Outbound(transport=httpx.MockTransport(plc), **kw))


async def _handler(frame: bytes) -> LabelResult:
    return LabelResult(None)


def _refusals() -> float:
    return REGISTRY.get_sample_value("outbound_failures_total", {"reason": "refused"}) or 0


async def _run_until_refused(source: LabelSource, before: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(_handler, stop))
    for _ in range(200):
        if _refusals() > before:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_a_labeler_endpoint_on_a_private_address_is_never_connected() -> None:
    async with serve() as host:
        for endpoint in (f"https://127.0.0.1:{host.port}", f"https://localhost:{host.port}", host.url,
                         f"ws://127.0.0.1:{host.port}", f"https://[::ffff:127.0.0.1]:{host.port}"):
            r = resolver(endpoint)
            before = _refusals()
            await _run_until_refused(LabelSource(LABELER, cursor=None, resolver=r, backoff_max_s=0.05), before)
            assert _refusals() > before, endpoint
            await r.aclose()
        assert host.hits == []


async def test_a_checked_endpoint_is_connected_by_address() -> None:
    # With the development switch, a name only our resolver knows still connects: to the address checked.
    async def dns(name: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with serve() as host:
        did = f"did:web:127.0.0.1%3A{host.port}"
        body = orjson.dumps({"id": did, "service": [{"id": "#atproto_labeler", "type": "AtprotoLabeler",
                                                     "serviceEndpoint": f"http://labeler.example:{host.port}"}]})
        host.modes["/.well-known/did.json"] = "/ok?" + urlencode({"body": body.decode(), "type": "application/json"})
        r = IdentityResolver(client=Outbound(allow_private=True, resolve=dns))
        source = LabelSource(did, cursor=None, resolver=r, backoff_max_s=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(_handler, stop))
        for _ in range(200):
            if any(h.startswith("/xrpc/") for h in host.hits):
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 10)
        await r.aclose()
        # the websocket handshake reached the server (not a websocket server, so it then fails)
        assert any(h.startswith("/xrpc/com.atproto.label.subscribeLabels") for h in host.hits)
