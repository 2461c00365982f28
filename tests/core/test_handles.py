"""Bi-directional handle verification: DNS TXT, HTTPS well-known, the PDS for `.test`, caching."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from core.handles import INVALID_HANDLE, HandleResolver, did_from_txt
from core.identity import DidInfo, IdentityResolver
from core.outbound import Outbound
from tests.hostile.http_hosts import serve

ALICE = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
BOB = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"


def info(did: str, handle: str | None, pds: str | None = "https://pds.example") -> DidInfo:
    return DidInfo(did=did, handle=handle, pds=pds, signing_key=None, doc={})


class Peer:
    def __init__(self, txt: dict[str, list[str]], web: dict[str, tuple[int, str]],
                 pds: dict[str, str] | None = None) -> None:
        self.txt, self.web, self.pds = txt, web, pds or {}
        self.calls: list[str] = []

    async def lookup(self, name: str) -> list[str]:
        self.calls.append(f"dns {name}")
        return self.txt.get(name, [])

    def serve(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"http {request.url.host}{request.url.path}")
        if request.url.path.endswith("resolveHandle"):
            did = self.pds.get(request.url.params["handle"])
            return httpx.Response(200, json={"did": did}) if did else httpx.Response(400, json={"error": "x"})
        status, body = self.web.get(request.url.host, (404, "not found"))
        return httpx.Response(status, text=body)

    def resolver(self, **kwargs: Any) -> HandleResolver:
        client = Outbound(transport=httpx.MockTransport(self.serve))
        identity = IdentityResolver(client=client)
        return HandleResolver(identity, client=client, txt_lookup=self.lookup, **kwargs)


async def test_dns_txt_confirms_the_handle() -> None:
    peer = Peer({"_atproto.alice.example": ["v=spf1", f"did={ALICE}"]}, {})
    assert await peer.resolver().verified_handle(info(ALICE, "alice.example")) == "alice.example"


async def test_https_well_known_confirms_the_handle() -> None:
    peer = Peer({}, {"alice.example": (200, f"{ALICE}\n")})
    assert await peer.resolver().verified_handle(info(ALICE, "alice.example")) == "alice.example"


async def test_dns_wins_over_https_on_conflict() -> None:
    peer = Peer({"_atproto.alice.example": [f"did={BOB}"]}, {"alice.example": (200, ALICE)})
    assert await peer.resolver().verified_handle(info(ALICE, "alice.example")) == INVALID_HANDLE


@pytest.mark.parametrize("case", ["elsewhere", "unresolvable", "unclaimed", "ambiguous-dns", "http-error"])
async def test_anything_but_a_round_trip_is_handle_invalid(case: str) -> None:
    peer = Peer({"_atproto.amb.example": [f"did={ALICE}", f"did={BOB}"]},
                {"bob.example": (200, BOB), "err.example": (500, ALICE)})
    handle = {"elsewhere": "bob.example", "unresolvable": "nobody.example", "unclaimed": None,
              "ambiguous-dns": "amb.example", "http-error": "err.example"}[case]
    assert await peer.resolver().verified_handle(info(ALICE, handle)) == INVALID_HANDLE


async def test_test_handles_are_asked_of_the_pds_in_the_did_document() -> None:
    peer = Peer({}, {}, pds={"alice.test": ALICE, "liar.test": BOB})
    r = peer.resolver()
    assert await r.verified_handle(info(ALICE, "alice.test")) == "alice.test"
    assert await r.verified_handle(info(ALICE, "liar.test")) == INVALID_HANDLE
    assert await r.verified_handle(info(ALICE, "alice.test", pds=None)) == INVALID_HANDLE
    assert not [c for c in peer.calls if c.startswith("dns")]  # .test never goes to DNS


async def test_results_are_cached_until_forced() -> None:
    peer = Peer({}, {"alice.example": (200, ALICE)})
    r = peer.resolver()
    for _ in range(3):
        await r.verified_handle(info(ALICE, "alice.example"))
    assert peer.calls.count("http alice.example/.well-known/atproto-did") == 1
    peer.web["alice.example"] = (200, BOB)  # the handle moved to another account
    assert await r.verified_handle(info(ALICE, "alice.example")) == "alice.example"  # cached
    assert await r.verified_handle(info(ALICE, "alice.example"), force=True) == INVALID_HANDLE


def test_txt_parsing() -> None:
    assert did_from_txt(["did=did:plc:x", "other"]) == "did:plc:x"
    assert did_from_txt(["did=did:plc:x", "did=did:plc:x"]) == "did:plc:x"
    assert did_from_txt(["did=did:plc:x", "did=did:plc:y"]) is None
    assert did_from_txt([]) is None


# --- the HTTPS method goes through the outbound guard --------------------------------------------------------


async def _no_txt(name: str) -> list[str]:
    return []


async def test_a_handle_whose_name_resolves_privately_is_never_fetched() -> None:
    async with serve() as host:
        async def dns(name: str, port: int) -> list[str]:
            return ["127.0.0.1"]  # alice.example → loopback: e.g. a hostile DNS zone

        identity = IdentityResolver(client=Outbound(resolve=dns))
        handles = HandleResolver(identity, txt_lookup=_no_txt)
        refused_before = REGISTRY.get_sample_value("outbound_failures_total", {"reason": "refused"}) or 0
        assert await handles.verified_handle(info(ALICE, "alice.example")) == INVALID_HANDLE
        assert await handles._well_known_url(f"https://alice.example:{host.port}/.well-known/atproto-did") is None
        refused = REGISTRY.get_sample_value("outbound_failures_total", {"reason": "refused"}) or 0
        assert refused - refused_before == 2  # both refused by the guard, not failed on the wire
        await identity.aclose()
        assert host.hits == []


async def test_a_well_known_body_is_capped_and_its_host_cannot_stall_us() -> None:
    async with serve() as host:
        async def dns(name: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        # allow_private stands in for a public host; the body cap and the deadline are what is tested here
        out = Outbound(allow_private=True, resolve=dns)
        identity = IdentityResolver(client=out)
        handles = HandleResolver(identity, txt_lookup=_no_txt, timeout_s=1.0)
        for mode in ("/flood?mib=64", "/drip"):
            host.modes["/.well-known/atproto-did"] = mode
            assert await handles._well_known_url(f"{host.url}/.well-known/atproto-did") is None
        await asyncio.sleep(0.3)
        assert host.sent < 64 << 20
        await out.aclose()


async def test_handles_that_are_not_handles_never_reach_a_url() -> None:
    peer = Peer({}, {})
    resolver = peer.resolver()
    for bad in ("evil.example/path", "evil.example:8080", "user@evil.example", "127.0.0.1", "a..b", ""):
        assert await resolver.resolve(bad) is None
    assert peer.calls == []
