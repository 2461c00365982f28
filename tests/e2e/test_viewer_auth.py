"""Viewer auth against the real reference PDS: tokens it mints with `com.atproto.server.getServiceAuth`, and
requests it proxies to us (`atproto-proxy`) after resolving our did:web document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from appview import auth
from appview.app import create_app
from appview.settings import AppviewSettings
from appview.xrpc import XrpcRouter
from tests.appview.xrpckit import LEX
from tests.localnet.peer import Account, Localnet, Xrpc, free_port

pytestmark = pytest.mark.e2e
METHOD = "fm.plyr.test.whoami"


def appview(db_url: str, localnet: Localnet, port: int) -> FastAPI:
    settings = AppviewSettings(public_url=f"http://localhost:{port}", plc_url=localnet.plc_url)
    app = create_app(settings, db_url)

    @app.get(f"/xrpc/{METHOD}")
    async def whoami(viewer: auth.OptionalViewer) -> dict[str, Any]:
        return {"did": viewer.did if viewer else None, "lxm": viewer.lxm if viewer else None}

    @app.get("/me")
    async def me(viewer: auth.RequiredViewer) -> dict[str, Any]:
        return {"did": viewer.did}

    xrpc = XrpcRouter(LEX, validate_output=True)

    @xrpc.method("fm.plyr.test.getViewer", auth="required")
    async def get_viewer(params: dict[str, Any], viewer: auth.Viewer | None, conn: Any) -> dict[str, Any]:
        assert viewer is not None
        await conn.execute("SELECT 1")  # a pooled connection from the real app
        return {"did": viewer.did}

    app.include_router(xrpc.api_router())
    # routes added after create_app go before its /xrpc/ 501 fallback
    fallback = next(r for r in app.router.routes if getattr(r, "path", "") == "/xrpc/{nsid:path}")
    app.router.routes.remove(fallback)
    app.router.routes.append(fallback)
    return app


@pytest.fixture
async def served(db_url: str, localnet: Localnet) -> AsyncIterator[tuple[FastAPI, str]]:
    """Our app on a real port, reachable by the PDS (which resolves did:web:localhost%3A<port>)."""
    port = free_port()
    app = appview(db_url, localnet, port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.05)
    yield app, f"http://localhost:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, 15)


async def service_token(xrpc: Xrpc, acct: Account, aud: str, lxm: str | None = None) -> str:
    params = {"aud": aud} | ({"lxm": lxm} if lxm else {})
    r = await xrpc.http.get("com.atproto.server.getServiceAuth", params=params,
                            headers={"authorization": f"Bearer {acct.token}"})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def test_tokens_minted_by_the_pds(served: tuple[FastAPI, str], xrpc: Xrpc) -> None:
    app, base = served
    did = app.state.auth.service_did
    assert did.startswith("did:web:localhost%3A")
    alice = await xrpc.create_account("alice-auth.test")
    async with httpx.AsyncClient(base_url=base) as c:
        doc = (await c.get("/.well-known/did.json")).json()
        assert doc["id"] == did and doc["service"][0]["serviceEndpoint"] == base

        for lxm in (METHOD, None):
            token = await service_token(xrpc, alice, did, lxm)
            r = await c.get(f"/xrpc/{METHOD}", headers={"authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json() == {"did": alice.did, "lxm": lxm}
        token = await service_token(xrpc, alice, did)
        assert (await c.get("/me", headers={"authorization": f"Bearer {token}"})).json() == {"did": alice.did}

        wrong_lxm = await service_token(xrpc, alice, did, "fm.plyr.test.other")
        r = await c.get(f"/xrpc/{METHOD}", headers={"authorization": f"Bearer {wrong_lxm}"})
        assert r.status_code == 401 and r.json()["error"] == "BadJwtLexiconMethod"

        other_aud = await service_token(xrpc, alice, "did:web:elsewhere.test", METHOD)
        r = await c.get(f"/xrpc/{METHOD}", headers={"authorization": f"Bearer {other_aud}"})
        assert r.status_code == 401 and r.json()["error"] == "BadJwtAudience"

        # the PDS's own session token is not a service-auth token
        r = await c.get("/me", headers={"authorization": f"Bearer {alice.token}"})
        assert r.status_code == 401 and "getServiceAuth" in r.json()["detail"]


async def test_requests_proxied_by_the_pds(served: tuple[FastAPI, str], xrpc: Xrpc) -> None:
    app, _ = served
    bob = await xrpc.create_account("bob-auth.test")
    r = await xrpc.http.get(METHOD, headers={"authorization": f"Bearer {bob.token}",
                                             "atproto-proxy": f"{app.state.auth.service_did}#plyr_appview"})
    assert r.status_code == 200, r.text
    assert r.json() == {"did": bob.did, "lxm": METHOD}
    # through the XRPC machinery (lexicon-checked params and output, auth required)
    r = await xrpc.http.get("fm.plyr.test.getViewer", headers={
        "authorization": f"Bearer {bob.token}", "atproto-proxy": f"{app.state.auth.service_did}#plyr_appview"})
    assert r.status_code == 200 and r.json() == {"did": bob.did}
    r = await xrpc.http.get("fm.plyr.test.getNothing", headers={
        "authorization": f"Bearer {bob.token}", "atproto-proxy": f"{app.state.auth.service_did}#plyr_appview"})
    assert r.status_code == 501 and r.json()["error"] == "MethodNotImplemented"
