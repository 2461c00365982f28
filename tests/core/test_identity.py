"""DID-doc parsing (Multikey + legacy formats) and IdentityResolver caching / errors / dedup."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import coincurve
import httpx
import libipld
import pytest

from core.crypto import PublicKey
from core.identity import IdentityResolver, ResolveError, did_web_url, parse_did_doc
from core.outbound import Outbound
from tests.hostile.http_hosts import serve

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
DID2 = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
# from the interop vectors (w3c_didkey_K256.json)
K256_MULTIKEY = "zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"


def plc_doc(
    did: str, multikey: str, handle: str = "alice.example.com", pds: str = "https://pds.example.com"
) -> dict[str, Any]:
    """The shape plc.directory serves today."""
    return {
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/secp256k1-2019/v1",
        ],
        "id": did,
        "alsoKnownAs": [f"at://{handle}"],
        "verificationMethod": [
            {"id": f"{did}#atproto", "type": "Multikey", "controller": did, "publicKeyMultibase": multikey}
        ],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}],
    }


def legacy_doc(did: str, uncompressed: bytes, handle: str = "alice.test") -> dict[str, Any]:
    """The shape @did-plc/server 0.0.1 (local PLC) serves: raw uncompressed key, relative ids."""
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/secp256k1-2019/v1"],
        "id": did,
        "alsoKnownAs": [f"at://{handle}"],
        "verificationMethod": [
            {
                "id": "#atproto",
                "type": "EcdsaSecp256k1VerificationKey2019",
                "controller": did,
                "publicKeyMultibase": libipld.encode_multibase("z", uncompressed),
            }
        ],
        "service": [
            {
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": "http://localhost:2583",
            }
        ],
    }


# --- parse_did_doc -------------------------------------------------------------------------------


def test_parse_multikey_plc_doc() -> None:
    info = parse_did_doc(DID, plc_doc(DID, K256_MULTIKEY, handle="Alice.Example.COM"))
    assert info.did == DID
    assert info.handle == "alice.example.com"
    assert info.pds == "https://pds.example.com"
    assert info.signing_key is not None and info.signing_key.did_key == "did:key:" + K256_MULTIKEY


def test_parse_legacy_local_plc_doc() -> None:
    sk = coincurve.PrivateKey()
    info = parse_did_doc(DID, legacy_doc(DID, sk.public_key.format(compressed=False)))
    assert info.handle == "alice.test"
    assert info.pds == "http://localhost:2583"
    assert info.signing_key == PublicKey("k256", sk.public_key.format())


def test_parse_picks_atproto_entries_only() -> None:
    doc = plc_doc(DID, K256_MULTIKEY)
    doc["alsoKnownAs"] = ["https://example.com", "at://not a handle", "at://second.example.com"]
    doc["verificationMethod"].insert(0, {"id": "#other", "type": "Multikey", "publicKeyMultibase": "zzz"})
    doc["service"] = [
        {"id": "#bsky_fg", "type": "BskyFeedGenerator", "serviceEndpoint": "https://fg.example.com"},
        {
            "id": f"{DID}#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "https://b.example",
        },
    ]
    info = parse_did_doc(DID, doc)
    assert info.handle == "second.example.com"
    assert info.pds == "https://b.example"
    assert info.signing_key is not None


def test_parse_tolerates_missing_or_bad_parts() -> None:
    info = parse_did_doc(DID, {"id": DID})
    assert (info.handle, info.pds, info.signing_key) == (None, None, None)
    doc = plc_doc(DID, "zNotAKey")
    doc["service"][0]["type"] = "SomethingElse"
    doc["alsoKnownAs"] = "at://x.example.com"  # not a list
    info = parse_did_doc(DID, doc)
    assert (info.handle, info.pds, info.signing_key) == (None, None, None)


def test_parse_rejects_mismatched_id() -> None:
    with pytest.raises(ValueError, match="does not match"):
        parse_did_doc(DID, plc_doc(DID2, K256_MULTIKEY))
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_did_doc(DID, [])  # type: ignore[arg-type]


def test_did_web_urls() -> None:
    assert did_web_url("did:web:example.com") == "https://example.com/.well-known/did.json"
    # loopback with a port: only with the development switch (OUTBOUND_ALLOW_PRIVATE)
    assert did_web_url("did:web:localhost%3A1234", allow_private=True) == "http://localhost:1234/.well-known/did.json"
    assert did_web_url("did:web:127.0.0.1%3A8080", allow_private=True) == "http://127.0.0.1:8080/.well-known/did.json"
    for loopback in ["did:web:localhost%3A1234", "did:web:127.0.0.1%3A8080", "did:web:LOCALHOST"]:
        with pytest.raises(ResolveError) as ei:
            did_web_url(loopback)
        assert ei.value.reason == "refused"
    for bad in ["did:web:example.com%3A8443", "did:web:example.com:path", "did:web:", "did:web:a/b.com"]:
        with pytest.raises(ResolveError) as ei:
            did_web_url(bad)
        assert ei.value.reason == "unsupported"


# --- resolver over a MockTransport ---------------------------------------------------------------

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make_resolver(handler: Handler, **kw: Any) -> tuple[IdentityResolver, list[str]]:
    seen: list[str] = []

    async def record(req: httpx.Request) -> httpx.Response:
        seen.append(str(req.url))
        return await handler(req)

    client = Outbound(allow_private=True, transport=httpx.MockTransport(record))  # http://localhost PDS URLs
    return IdentityResolver(plc_url="https://plc.test", client=client, **kw), seen


def serve_docs(docs: dict[str, Any]) -> Handler:
    async def handler(req: httpx.Request) -> httpx.Response:
        did = req.url.path.lstrip("/")
        doc = docs.get(did)
        if doc is None:
            return httpx.Response(404, json={"message": "DID not registered"})
        if isinstance(doc, int):
            return httpx.Response(doc)
        if isinstance(doc, str | bytes):
            return httpx.Response(200, content=doc)
        return httpx.Response(200, json=doc)

    return handler


async def test_cache_hit_and_counters() -> None:
    r, seen = make_resolver(serve_docs({DID: plc_doc(DID, K256_MULTIKEY)}))
    a = await r.resolve(DID)
    b = await r.resolve(DID)
    assert a is b and seen == [f"https://plc.test/{DID}"]
    assert (r.hits, r.misses, r.fetches) == (1, 1, 1)


async def test_ttl_expiry_and_force_and_invalidate() -> None:
    clock = FakeClock()
    r, seen = make_resolver(serve_docs({DID: plc_doc(DID, K256_MULTIKEY)}), ttl_s=60, clock=clock)
    await r.resolve(DID)
    clock.t += 59
    await r.resolve(DID)
    assert len(seen) == 1
    clock.t += 2
    await r.resolve(DID)
    assert len(seen) == 2
    await r.resolve(DID, force=True)
    assert len(seen) == 3
    r.invalidate(DID)
    await r.resolve(DID)
    assert len(seen) == 4


@pytest.mark.parametrize(
    ("served", "reason"),
    [
        (None, "not_found"),
        (410, "tombstoned"),
        (500, "http_error"),
        ("{not json", "bad_doc"),
        (b"\xff\xfe garbage", "bad_doc"),
        ('["a list"]', "bad_doc"),
        ({"id": DID2}, "bad_doc"),
    ],
)
async def test_errors(served: Any, reason: str) -> None:
    r, _ = make_resolver(serve_docs({} if served is None else {DID: served}))
    with pytest.raises(ResolveError) as ei:
        await r.resolve(DID)
    assert ei.value.reason == reason and ei.value.did == DID
    assert DID in str(ei.value)


async def test_timeout_and_connect_error() -> None:
    async def timeout(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=req)

    async def refused(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    for handler, reason in [(timeout, "timeout"), (refused, "http_error")]:
        r, seen = make_resolver(handler)
        for _ in range(2):  # transient errors are not cached: both calls go to the network
            with pytest.raises(ResolveError) as ei:
                await r.resolve(DID)
            assert ei.value.reason == reason
        assert len(seen) == 2


async def test_sticky_errors_cached_briefly() -> None:
    clock = FakeClock()
    docs: dict[str, Any] = {}
    r, seen = make_resolver(serve_docs(docs), error_ttl_s=120, clock=clock)
    with pytest.raises(ResolveError):
        await r.resolve(DID)
    with pytest.raises(ResolveError):
        await r.resolve(DID)
    assert len(seen) == 1  # 404 remembered
    docs[DID] = plc_doc(DID, K256_MULTIKEY)
    assert (await r.resolve(DID, force=True)).did == DID  # force bypasses the negative entry
    assert len(seen) == 2


async def test_unsupported_dids_make_no_request() -> None:
    r, seen = make_resolver(serve_docs({}))
    for did in ["did:key:zQ3sh", "did:plc:short", "did:plc:../../etc", "did:web:example.com%3A1"]:
        with pytest.raises(ResolveError) as ei:
            await r.resolve(did)
        assert ei.value.reason == "unsupported"
    assert seen == []


async def test_inflight_dedup() -> None:
    gate = asyncio.Event()
    inner = serve_docs({DID: plc_doc(DID, K256_MULTIKEY)})

    async def slow(req: httpx.Request) -> httpx.Response:
        await gate.wait()
        return await inner(req)

    r, seen = make_resolver(slow)
    tasks = [asyncio.create_task(r.resolve(DID, force=(i == 3))) for i in range(10)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert len(seen) == 1 and all(x is results[0] for x in results)
    assert r.joined == 9


async def test_inflight_dedup_shares_errors_and_survives_cancel() -> None:
    gate = asyncio.Event()

    async def slow404(req: httpx.Request) -> httpx.Response:
        await gate.wait()
        return httpx.Response(404)

    r, seen = make_resolver(slow404)
    t1 = asyncio.create_task(r.resolve(DID))
    t2 = asyncio.create_task(r.resolve(DID))
    await asyncio.sleep(0.01)
    t1.cancel()  # one waiter going away must not cancel the shared fetch
    gate.set()
    with pytest.raises(ResolveError):
        await t2
    assert t1.cancelled() and len(seen) == 1


async def test_lru_bound() -> None:
    dids = [f"did:plc:{c * 24}" for c in "abcdefg"]
    r, seen = make_resolver(serve_docs({d: plc_doc(d, K256_MULTIKEY) for d in dids}), max_entries=3)
    for d in dids:
        await r.resolve(d)
    assert r.stats()["size"] == 3
    await r.resolve(dids[-1])
    assert len(seen) == len(dids)  # most recent still cached
    await r.resolve(dids[0])
    assert len(seen) == len(dids) + 1  # oldest evicted


async def test_resolve_handle_via_pds() -> None:
    async def pds(req: httpx.Request) -> httpx.Response:
        assert req.url.path == "/xrpc/com.atproto.identity.resolveHandle"
        if req.url.params["handle"] == "alice.test":
            return httpx.Response(200, json={"did": DID})
        return httpx.Response(400, json={"error": "InvalidRequest", "message": "Unable to resolve handle"})

    r, _ = make_resolver(pds)
    assert await r.resolve_handle_via_pds("http://localhost:2583/", "alice.test") == DID
    assert await r.resolve_handle_via_pds("http://localhost:2583", "nobody.test") is None


# --- resolver over a real local HTTP server (did:web dev allowance, real client) ------------------


@pytest.fixture
def web_server() -> Iterator[tuple[int, dict[str, Any]]]:
    docs: dict[str, Any] = {}

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            docs["hits"] = docs.get("hits", 0) + 1
            body = json.dumps(docs["doc"]).encode() if self.path == "/.well-known/did.json" else b""
            self.send_response(200 if body else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv.server_address[1], docs
    srv.shutdown()
    srv.server_close()


async def test_did_web_localhost(web_server: tuple[int, dict[str, Any]]) -> None:
    port, docs = web_server
    did = f"did:web:127.0.0.1%3A{port}"
    docs["doc"] = plc_doc(did, K256_MULTIKEY, pds=f"http://127.0.0.1:{port}")
    async with IdentityResolver(timeout_s=2, allow_private=True) as r:
        info = await r.resolve(did)
    assert info.pds == f"http://127.0.0.1:{port}" and info.signing_key is not None


async def test_did_web_loopback_refused_without_the_switch(web_server: tuple[int, dict[str, Any]]) -> None:
    port, docs = web_server
    for did in (f"did:web:127.0.0.1%3A{port}", f"did:web:localhost%3A{port}"):
        docs["doc"] = plc_doc(did, K256_MULTIKEY)
        async with IdentityResolver(timeout_s=2) as r:
            with pytest.raises(ResolveError) as ei:
                await r.resolve(did)
        assert ei.value.reason == "refused"
    assert docs.get("hits", 0) == 0


async def test_a_did_document_larger_than_the_cap_is_cut_off() -> None:
    async with serve() as host, IdentityResolver(timeout_s=10, allow_private=True) as r:
        did = f"did:web:127.0.0.1%3A{host.port}"
        # /.well-known/did.json is served by the catch-all with a body we choose: make it flood instead
        r._url_for = lambda did: f"{host.url}/flood?mib=64"  # type: ignore[method-assign]
        with pytest.raises(ResolveError) as ei:
            await r.resolve(did)
        assert ei.value.reason == "bad_doc" and ei.value.detail == "too_large"
        await asyncio.sleep(0.3)
        assert host.sent < 64 << 20
