"""Viewer auth with our own k256/p256 keys against a fake PLC directory: every refusal is a 401 with a
named error, never a 500; an issuer we cannot resolve is the same 401 whatever the reason (no probing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import appview.auth.jwt as jwt_mod
from appview import auth
from appview.auth import AuthError, ServiceAuthVerifier, did_document
from appview.settings import AppviewSettings
from core.identity import IdentityResolver, ResolveError
from core.outbound import Outbound
from tests.appview.authkit import SERVICE_DID, FakePlc, Key, b64json, b64url, did_doc, make_jwt, plc_did, test_app
from tests.hostile.http_hosts import serve

ALICE = plc_did(1)
XRPC = "/xrpc/fm.plyr.test.whoami"


@pytest.fixture
def plc() -> FakePlc:
    return FakePlc()


@pytest.fixture
def key(plc: FakePlc) -> Key:
    k = Key("k256")
    plc.docs[ALICE] = did_doc(ALICE, k)
    return k


@pytest.fixture
def verifier(plc: FakePlc) -> ServiceAuthVerifier:
    return ServiceAuthVerifier(plc.resolver(), SERVICE_DID)


@pytest.fixture
async def client(verifier: ServiceAuthVerifier) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=test_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def refused(client: httpx.AsyncClient, token: str, error: str, path: str = XRPC) -> str:
    r = await client.get(path, headers=bearer(token))
    assert r.status_code == 401, r.text
    assert r.json()["error"] == error, r.json()
    assert r.headers["www-authenticate"] == "Bearer"
    return str(r.json()["message"])


@pytest.mark.parametrize("curve", ["k256", "p256"])
async def test_valid_tokens_identify_the_viewer(client: httpx.AsyncClient, plc: FakePlc, curve: str) -> None:
    k = Key(curve)
    plc.docs[ALICE] = did_doc(ALICE, k)
    for path in ("/whoami", "/me", "/did", XRPC):
        r = await client.get(path, headers=bearer(make_jwt(k, ALICE)))
        assert r.status_code == 200 and r.json() == {"did": ALICE}


async def test_anonymous(client: httpx.AsyncClient) -> None:
    assert (await client.get("/whoami")).json() == {"did": None}
    assert (await client.get(XRPC)).json() == {"did": None}
    r = await client.get("/me")
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]


async def test_error_dialects(client: httpx.AsyncClient, key: Key) -> None:
    expired = make_jwt(key, ALICE, exp=time.time() - 3600)
    rest = await client.get("/whoami", headers=bearer(expired))
    assert rest.status_code == 401 and rest.json() == {"detail": "jwt expired"}
    xrpc = await client.get(XRPC, headers=bearer(expired))
    assert xrpc.status_code == 401 and xrpc.json() == {"error": "JwtExpired", "message": "jwt expired"}


async def test_expiry_has_a_small_leeway(client: httpx.AsyncClient, key: Key) -> None:
    assert (await client.get(XRPC, headers=bearer(make_jwt(key, ALICE, exp=time.time() - 3)))).status_code == 200
    await refused(client, make_jwt(key, ALICE, exp=time.time() - 60), "JwtExpired")
    future = {"iat": time.time() + 3600, "iss": ALICE, "aud": SERVICE_DID, "exp": time.time() + 7200}
    assert "future" in await refused(client, make_jwt(key, ALICE, payload=future), "BadJwt")


async def test_audience(client: httpx.AsyncClient, key: Key) -> None:
    msg = await refused(client, make_jwt(key, ALICE, aud="did:web:other.test"), "BadJwtAudience")
    assert SERVICE_DID in msg
    ok = await client.get(XRPC, headers=bearer(make_jwt(key, ALICE, aud=SERVICE_DID + "#plyr_appview")))
    assert ok.status_code == 200


async def test_lexicon_method(client: httpx.AsyncClient, key: Key) -> None:
    await refused(client, make_jwt(key, ALICE, lxm="fm.plyr.test.other"), "BadJwtLexiconMethod")
    ok = await client.get(XRPC, headers=bearer(make_jwt(key, ALICE, lxm="fm.plyr.test.whoami")))
    assert ok.status_code == 200
    # REST routes have no lexicon method; a method-bound token is still the same viewer there.
    rest = await client.get("/whoami", headers=bearer(make_jwt(key, ALICE, lxm="fm.plyr.test.other")))
    assert rest.json() == {"did": ALICE}


async def test_issuer_with_service_fragment(client: httpx.AsyncClient, key: Key) -> None:
    r = await client.get(XRPC, headers=bearer(make_jwt(key, ALICE + "#atproto_labeler")))
    assert r.json() == {"did": ALICE}


async def test_bad_signature_refreshes_once_then_is_rate_limited(client: httpx.AsyncClient, key: Key,
                                                                 plc: FakePlc) -> None:
    mallory = Key("k256")
    await refused(client, make_jwt(mallory, ALICE), "BadJwtSignature")
    assert plc.fetches == 2  # resolve + one forced refresh
    await refused(client, make_jwt(mallory, ALICE, exp=time.time() + 30), "BadJwtSignature")
    assert plc.fetches == 2  # refresh rate-limited per DID


async def test_rotated_key_is_picked_up(client: httpx.AsyncClient, key: Key, plc: FakePlc) -> None:
    assert (await client.get(XRPC, headers=bearer(make_jwt(key, ALICE)))).status_code == 200
    rotated = Key("p256")
    plc.docs[ALICE] = did_doc(ALICE, rotated)
    r = await client.get(XRPC, headers=bearer(make_jwt(rotated, ALICE)))
    assert r.status_code == 200 and r.json() == {"did": ALICE}
    assert plc.fetches == 2


async def test_low_s(client: httpx.AsyncClient, plc: FakePlc) -> None:
    k, p = Key("k256"), Key("p256")
    plc.docs[ALICE] = did_doc(ALICE, k)
    await refused(client, make_jwt(k, ALICE, high_s=True), "BadJwtSignature")
    plc.docs[ALICE] = did_doc(ALICE, p)  # WebCrypto p256 keys sign high-S half the time: accepted
    bob = plc_did(2)
    plc.docs[bob] = did_doc(bob, p)
    assert (await client.get(XRPC, headers=bearer(make_jwt(p, bob, high_s=True)))).status_code == 200


async def test_alg_must_match_the_key(client: httpx.AsyncClient, key: Key) -> None:
    token = make_jwt(key, ALICE, header={"typ": "JWT", "alg": "ES256"})
    await refused(client, token, "BadJwtSignature")


@pytest.mark.parametrize("token,error", [
    ("", "AuthenticationRequired"),
    ("a.b", "BadJwt"),
    ("a.b.c.d", "BadJwt"),
    ("!!!.e30.AAAA", "BadJwt"),
    ("e30=.e30.AAAA", "BadJwt"),  # padded base64 is not base64url
    (f"{b64url(b'not json')}.e30.AAAA", "BadJwt"),
    (f"{b64json([1, 2])}.e30.AAAA", "BadJwt"),
    (f"{b64json({'alg': 'none'})}.{b64json({'iss': ALICE, 'aud': SERVICE_DID, 'exp': 2**40})}.", "BadJwt"),
    (f"{b64json({'alg': 'HS256', 'typ': 'at+jwt'})}.e30.AAAA", "BadJwtType"),
    (f"{b64json({'alg': ['ES256K']})}.e30.AAAA", "BadJwt"),
    (f"{b64json({'alg': 'ES256K'})}.{b64json({'iss': ALICE, 'aud': SERVICE_DID})}.AAAA", "BadJwt"),
    (f"{b64json({'alg': 'ES256K'})}.{b64json({'iss': 'alice', 'aud': SERVICE_DID, 'exp': 2**40})}.AAAA",
     "BadJwtIss"),
    (f"{b64json({'alg': 'ES256K'})}.{b64json({'iss': ALICE, 'aud': SERVICE_DID, 'exp': 2**40})}.AAAA",
     "BadJwtSignature"),  # 3-byte signature
    (f"{b64json({'alg': 'ES256K'})}.{b64json({'iss': ALICE, 'aud': SERVICE_DID, 'exp': True})}.AAAA",
     "BadJwt"),
])  # fmt: skip
async def test_malformed_tokens(client: httpx.AsyncClient, key: Key, token: str, error: str) -> None:
    r = await client.get(XRPC, headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"] == error, r.json()


async def test_wrong_scheme(client: httpx.AsyncClient, key: Key) -> None:
    await refused(client, "x", "BadJwt")  # sanity: "Bearer x" is a (bad) token
    r = await client.get(XRPC, headers={"authorization": f"Basic {make_jwt(key, ALICE)}"})
    assert r.status_code == 401 and r.json()["error"] == "AuthenticationRequired"
    r = await client.get(XRPC, headers={"authorization": f"bearer   {make_jwt(key, ALICE)}"})
    assert r.status_code == 200


async def test_unresolvable_issuer(client: httpx.AsyncClient, plc: FakePlc) -> None:
    k = Key("k256")
    not_found = await refused(client, make_jwt(k, plc_did(9)), "BadJwtIss")
    assert "could not resolve" in not_found
    plc.docs[plc_did(8)] = did_doc(plc_did(8), None)
    assert "no #atproto" in await refused(client, make_jwt(k, plc_did(8)), "BadJwtIss")
    plc.down = True  # a transient failure answers exactly like a missing DID
    assert await refused(client, make_jwt(k, plc_did(7)), "BadJwtIss") == not_found


async def test_unresolvable_issuers_are_remembered_briefly(client: httpx.AsyncClient, plc: FakePlc) -> None:
    k = Key("k256")
    plc.down = True
    await refused(client, make_jwt(k, plc_did(6)), "BadJwtIss")
    fetches = plc.fetches
    for _ in range(5):
        await refused(client, make_jwt(k, plc_did(6)), "BadJwtIss")
    assert plc.fetches == fetches  # no fetch per token: a flood of them costs one


async def test_verified_tokens_are_cached(client: httpx.AsyncClient, key: Key, monkeypatch: pytest.MonkeyPatch,
                                          verifier: ServiceAuthVerifier) -> None:
    calls = []
    real = jwt_mod.verify_signature
    monkeypatch.setattr(jwt_mod, "verify_signature", lambda *a: calls.append(1) or real(*a))
    token = make_jwt(key, ALICE, lxm="fm.plyr.test.whoami")
    for _ in range(5):
        assert (await client.get(XRPC, headers=bearer(token))).status_code == 200
    assert len(calls) == 1
    # the cache keeps the signature check, not the per-request claims: expiry and lxm still apply
    with pytest.raises(AuthError, match="lxm"):
        await verifier.verify(token, "fm.plyr.test.other")
    verifier._clock = lambda: time.time() + 3600
    await refused(client, token, "JwtExpired")
    verifier._clock, verifier.cache_ttl_s = time.time, 0  # past the cache's age limit: verified afresh
    assert (await client.get(XRPC, headers=bearer(token))).status_code == 200
    assert len(calls) == 2


async def test_cache_is_bounded(plc: FakePlc, key: Key) -> None:
    verifier = ServiceAuthVerifier(plc.resolver(), SERVICE_DID, cache_size=3)
    for i in range(10):
        await verifier.verify(make_jwt(key, ALICE, lxm=f"a.b.c{i}"))
    assert len(verifier._verified) == 3


def test_did_document() -> None:
    doc = did_document("did:web:api.plyr.test", "https://api.plyr.test/")
    assert doc["service"] == [{"id": "#plyr_appview", "type": "PlyrAppView",
                               "serviceEndpoint": "https://api.plyr.test"}]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                     max_leaves=8)
_claims = st.fixed_dictionaries({}, optional={
    "iss": st.sampled_from([ALICE, ALICE + "#x", "did:web:x.test", "x"]) | st.text(max_size=30) | _json,
    "aud": st.sampled_from([SERVICE_DID, "x"]) | _json, "exp": st.integers() | st.floats() | _json,
    "iat": st.integers() | st.floats() | _json, "lxm": st.text(max_size=10) | _json, "jti": _json})
_header = st.fixed_dictionaries({}, optional={"alg": st.sampled_from(["ES256K", "ES256", "none"]) | _json,
                                              "typ": st.sampled_from(["JWT", "at+jwt"]) | _json})
_structured = st.builds(lambda h, p, s: f"{b64json(h)}.{b64json(p)}.{b64url(s)}", _header | _json, _claims | _json,
                        st.binary(min_size=0, max_size=70))
_garbage = st.text(max_size=200) | st.text(alphabet="abcAB-_.=+/0", max_size=200) | _structured


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token=_garbage)
def test_garbage_tokens_are_always_refused_cleanly(token: str) -> None:
    plc = FakePlc()
    plc.docs[ALICE] = did_doc(ALICE, Key("k256"))
    verifier = ServiceAuthVerifier(plc.resolver(), SERVICE_DID)

    async def run() -> None:
        with pytest.raises(AuthError) as info:
            await verifier.verify(token, "fm.plyr.test.whoami")
        assert info.value.status == 401 and info.value.error and info.value.message

    asyncio.run(run())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=st.text(max_size=80))
def test_garbage_headers_never_500(header: str) -> None:
    async def run() -> None:
        plc = FakePlc()
        transport = httpx.ASGITransport(app=test_app(ServiceAuthVerifier(plc.resolver(), SERVICE_DID)))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            try:
                r = await c.get(XRPC, headers={"authorization": header})
            except (httpx.LocalProtocolError, UnicodeEncodeError):
                return  # not a header httpx can send
            assert r.status_code in (200, 401), r.text

    asyncio.run(run())


# --- anonymous callers cannot make us probe addresses (the real wiring: auth.install with settings) ---------


def _installed_app(allow_private: bool) -> FastAPI:
    app = FastAPI()

    @app.get("/xrpc/fm.plyr.test.whoami")
    async def xrpc_whoami(viewer: auth.OptionalViewer) -> dict[str, str | None]:
        return {"did": viewer.did if viewer else None}

    auth.install(app, AppviewSettings(outbound_allow_private=allow_private, service_did=SERVICE_DID))
    return app


async def _ask(app: FastAPI, token: str) -> httpx.Response:
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return await c.get(XRPC, headers=bearer(token))


async def test_a_loopback_did_web_issuer_is_never_fetched() -> None:
    k = Key("k256")
    async with serve() as open_port:
        async with serve() as closed:
            closed_port = closed.port
        answers = []
        for port in (open_port.port, closed_port):
            for host in ("127.0.0.1", "localhost"):
                r = await _ask(_installed_app(allow_private=False), make_jwt(k, f"did:web:{host}%3A{port}"))
                assert r.status_code == 401
                answers.append(r.json())
        assert open_port.hits == []  # nothing reached the port
        assert all(a == answers[0] for a in answers) and answers[0]["error"] == "BadJwtIss"  # open = closed
        # control: with the development switch the same token does reach it (so the assertion above means it)
        r = await _ask(_installed_app(allow_private=True), make_jwt(k, f"did:web:127.0.0.1%3A{open_port.port}"))
        assert r.status_code == 401 and open_port.hits == ["/.well-known/did.json"]


async def test_an_issuer_whose_name_resolves_privately_is_refused_without_a_connection() -> None:
    async def private_dns(host: str, port: int) -> list[str]:
        return ["10.0.0.7"] if host == "issuer.example" else ["169.254.169.254"]

    resolver = IdentityResolver(client=Outbound(resolve=private_dns))
    verifier = ServiceAuthVerifier(resolver, SERVICE_DID)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=test_app(verifier)), base_url="http://t") as c:
        k = Key("k256")
        for iss in ("did:web:issuer.example", "did:web:metadata.example"):
            await refused(c, make_jwt(k, iss), "BadJwtIss")
            with pytest.raises(ResolveError) as e:  # why: the guard, before any connection
                await resolver.resolve(iss)
            assert e.value.reason == "refused"
    await resolver.aclose()
