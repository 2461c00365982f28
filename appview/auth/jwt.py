"""Inter-service auth JWTs (https://atproto.com/specs/xrpc#inter-service-authentication-jwt).

A PDS that proxies a request for one of its accounts (``atproto-proxy: <our DID>#plyr_appview``), or a
client holding a token from ``com.atproto.server.getServiceAuth``, sends ``Authorization: Bearer <jwt>``:

* header: ``alg`` ES256K (k256) or ES256 (p256); ``typ`` must not be an OAuth/refresh/DPoP type;
* payload: ``iss`` (a DID, optionally ``#service``), ``aud`` (our service DID), ``exp``, optional ``iat``,
  ``lxm`` (the one XRPC method the token is good for) and ``jti``;
* signature: raw 64-byte ``r||s`` over ``base64url(header) "." base64url(payload)``, by the issuer's
  ``#atproto`` key from its DID document.

Checks follow the reference verifier (``@atproto/xrpc-server`` ``verifyJwt``) and its error names; the
differences are deliberate: a small clock-skew leeway on ``exp``/``iat``, strict base64url/JSON, and
k256 signatures must be low-S (p256 high-S is normalised: browser WebCrypto keys do not produce low-S).
On a bad signature the issuer's DID document is fetched again once (its key may have rotated), at most
once per DID per ``refresh_interval_s``.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import orjson
import structlog
from fastapi import HTTPException
from prometheus_client import Counter

from core import syntax
from core.crypto import PublicKey, verify_signature
from core.identity import IdentityResolver, ResolveError

log = structlog.get_logger(__name__)

AUTH_RESULTS = Counter("appview_auth_total", "Service-auth JWT checks by outcome", ["outcome"])

MAX_TOKEN_LEN: Final = 8192  # real tokens are ~400-600 bytes
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_ALG_CURVE: Final = {"ES256K": "k256", "ES256": "p256"}
_FORBIDDEN_TYP: Final = {"at+jwt": "an OAuth access token", "refresh+jwt": "a refresh token",
                         "dpop+jwt": "a DPoP proof"}  # fmt: skip
_P256_N: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# One answer for every issuer we could not resolve, whatever the reason (refused address, timeout, 404, …):
# anonymous callers choose the issuer, so a difference would tell them what the network looks like from here.
UNRESOLVED_ISSUER: Final = "could not resolve the jwt issuer's DID document"


class AuthError(HTTPException):
    """A request's credentials were refused. ``error`` is the XRPC error name, ``status`` the HTTP status.

    An HTTPException, so even without ``appview.auth.install`` it renders as plyr's ``{"detail": …}``."""

    def __init__(self, error: str, message: str, status: int = 401) -> None:
        super().__init__(status, message, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
        self.error, self.message, self.status = error, message, status


@dataclass(frozen=True, slots=True)
class Viewer:
    """The authenticated account a request is made for."""

    did: str  # the issuer's DID, without any #service fragment
    iss: str  # as sent (may carry a #service fragment)
    lxm: str | None
    exp: int
    jti: str | None


@dataclass(frozen=True, slots=True)
class _Claims:
    header_alg: str
    viewer: Viewer
    aud: str
    iat: int | float | None


def _b64url_json(part: str, what: str) -> dict[str, Any]:
    raw = _b64url(part, what)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise AuthError("BadJwt", f"jwt {what} is not valid JSON") from None
    if type(value) is not dict:
        raise AuthError("BadJwt", f"jwt {what} is not a JSON object")
    return value


def _b64url(part: str, what: str) -> bytes:
    # Strict: unpadded base64url only (RFC 7515 §2); Python's decoder would skip stray characters.
    if not part or _B64URL.fullmatch(part) is None or len(part) % 4 == 1:
        raise AuthError("BadJwt", f"jwt {what} is not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise AuthError("BadJwt", f"jwt {what} is not unpadded base64url") from None


def _is_number(v: object) -> TypeGuard[int | float]:
    # also rejects bools, NaN and absurd values
    return type(v) in (int, float) and v == v and abs(v) < 2**53  # type: ignore[arg-type]


def _is_iss(iss: object) -> TypeGuard[str]:
    if type(iss) is not str or len(iss) > 2048:
        return False
    did, sep, frag = iss.partition("#")
    return syntax.is_did(did) and (not sep or (bool(frag) and "#" not in frag))


def parse_claims(token: str) -> tuple[_Claims, bytes, bytes]:
    """Decode and shape-check a token; returns (claims, signed bytes, signature). Raises AuthError."""
    if len(token) > MAX_TOKEN_LEN:
        raise AuthError("BadJwt", f"jwt longer than {MAX_TOKEN_LEN} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("BadJwt", "poorly formatted jwt: expected header.payload.signature")
    header = _b64url_json(parts[0], "header")
    alg, typ = header.get("alg"), header.get("typ")
    if type(typ) is str and typ in _FORBIDDEN_TYP:
        raise AuthError("BadJwtType", f"jwt typ {typ!r} is {_FORBIDDEN_TYP[typ]}, not a service-auth token "
                        "(get one from com.atproto.server.getServiceAuth, or proxy through your PDS)")
    if type(alg) is not str or alg not in _ALG_CURVE:
        raise AuthError("BadJwt", f"unsupported jwt alg {str(alg)[:20]!r} (expected ES256K or ES256)")
    payload = _b64url_json(parts[1], "payload")
    iss, aud, exp = payload.get("iss"), payload.get("aud"), payload.get("exp")
    iat, lxm, jti = payload.get("iat"), payload.get("lxm"), payload.get("jti")
    if type(aud) is not str or not _is_number(exp):
        raise AuthError("BadJwt", "poorly formatted jwt: aud (string) and exp (number) are required")
    if not _is_iss(iss):
        raise AuthError("BadJwtIss", "jwt iss is not a valid DID")
    if (iat is not None and not _is_number(iat)) or (lxm is not None and type(lxm) is not str) or (
            jti is not None and type(jti) is not str):  # fmt: skip
        raise AuthError("BadJwt", "poorly formatted jwt: iat must be a number, lxm and jti strings")
    sig = _b64url(parts[2], "signature")
    if len(sig) != 64:
        raise AuthError("BadJwtSignature", f"jwt signature must be 64 bytes (raw r||s), got {len(sig)}")
    viewer = Viewer(did=iss.partition("#")[0], iss=iss, lxm=lxm, exp=int(exp), jti=jti)
    return _Claims(alg, viewer, aud, iat), f"{parts[0]}.{parts[1]}".encode(), sig


def _signature_ok(key: PublicKey | None, alg: str, data: bytes, sig: bytes) -> bool:
    if key is None or key.curve != _ALG_CURVE[alg] or len(sig) != 64:
        return False
    if key.curve == "p256":
        s = int.from_bytes(sig[32:], "big")
        if _P256_N // 2 < s < _P256_N:  # (r, n-s) is the same signature; verify_signature wants low-S
            sig = sig[:32] + (_P256_N - s).to_bytes(32, "big")
    return verify_signature(key, data, sig)


class ServiceAuthVerifier:
    """Verifies service-auth JWTs for one audience; verified tokens are kept in a bounded LRU."""

    def __init__(self, resolver: IdentityResolver, service_did: str, *, leeway_s: float = 10.0,
                 cache_size: int = 10_000, cache_ttl_s: float = 300.0, refresh_interval_s: float = 60.0,
                 failure_ttl_s: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.resolver, self.service_did = resolver, service_did
        # A PDS sends the bare DID; accept the service-qualified form too (newer PDSes may send it).
        self.audiences = frozenset({service_did, service_did + "#plyr_appview"})
        self.leeway_s, self.cache_size, self.refresh_interval_s = leeway_s, cache_size, refresh_interval_s
        self.cache_ttl_s, self._clock = cache_ttl_s, clock
        # token → (claims, verified at): a page of requests verifies once; long-lived tokens are re-checked
        # after cache_ttl_s, so a key rotated away (e.g. after a compromise) stops working within that.
        self._verified: OrderedDict[str, tuple[_Claims, float]] = OrderedDict()
        self._refreshed: OrderedDict[str, float] = OrderedDict()  # did → last forced refresh (monotonic)
        # did → until when (monotonic) it is known not to resolve: repeated tokens naming it cost no fetch.
        self.failure_ttl_s = failure_ttl_s
        self._unresolved: OrderedDict[str, float] = OrderedDict()

    async def verify(self, token: str, lxm: str | None = None) -> Viewer:
        """The token's viewer, or AuthError. ``lxm``: the XRPC method called (None: not an XRPC route)."""
        hit = self._verified.get(token)
        if hit is not None and time.monotonic() - hit[1] < self.cache_ttl_s:
            self._verified.move_to_end(token)
            self._check_claims(hit[0], lxm)
            AUTH_RESULTS.labels("cached").inc()
            return hit[0].viewer
        try:
            claims, data, sig = parse_claims(token)
            self._check_claims(claims, lxm)
            await self._check_signature(claims, data, sig)
        except AuthError as e:
            AUTH_RESULTS.labels(e.error).inc()
            raise
        self._verified[token] = (claims, time.monotonic())
        self._verified.move_to_end(token)
        while len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        AUTH_RESULTS.labels("ok").inc()
        return claims.viewer

    def _check_claims(self, claims: _Claims, lxm: str | None) -> None:
        now, v = self._clock(), claims.viewer
        if now > v.exp + self.leeway_s:
            raise AuthError("JwtExpired", "jwt expired")
        if claims.iat is not None and claims.iat > now + self.leeway_s:
            raise AuthError("BadJwt", "jwt issued in the future (iat)")
        if claims.aud not in self.audiences:
            raise AuthError("BadJwtAudience", f"jwt audience does not match service did {self.service_did}")
        if lxm is not None and v.lxm is not None and v.lxm != lxm:
            raise AuthError("BadJwtLexiconMethod", f'bad jwt lexicon method ("lxm"): must match {lxm}')

    async def _check_signature(self, claims: _Claims, data: bytes, sig: bytes) -> None:
        did, alg = claims.viewer.did, claims.header_alg
        key = await self._key(did, force=False)
        if _signature_ok(key, alg, data, sig):
            return
        if self._may_refresh(did):
            fresh = await self._key(did, force=True)
            if fresh != key and _signature_ok(fresh, alg, data, sig):
                log.info("auth_key_rotated", did=did)
                return
        raise AuthError("BadJwtSignature", "jwt signature does not match jwt issuer")

    def _may_refresh(self, did: str) -> bool:
        now = time.monotonic()
        last = self._refreshed.get(did)
        if last is not None and now - last < self.refresh_interval_s:
            return False
        self._refreshed[did] = now
        self._refreshed.move_to_end(did)
        while len(self._refreshed) > self.cache_size:
            self._refreshed.popitem(last=False)
        return True

    async def _key(self, did: str, *, force: bool) -> PublicKey | None:
        until = self._unresolved.get(did)
        if until is not None and time.monotonic() < until:
            raise AuthError("BadJwtIss", UNRESOLVED_ISSUER)
        try:
            info = await self.resolver.resolve(did, force=force)
        except ResolveError as e:
            log.info("auth_issuer_unresolved", did=did[:200], reason=e.reason)
            self._remember_unresolved(did)
            raise AuthError("BadJwtIss", UNRESOLVED_ISSUER) from None
        if info.signing_key is None:
            raise AuthError("BadJwtIss", f"jwt issuer {did} has no #atproto signing key")
        return info.signing_key

    def _remember_unresolved(self, did: str) -> None:
        if self.failure_ttl_s <= 0:
            return
        self._unresolved[did] = time.monotonic() + self.failure_ttl_s
        self._unresolved.move_to_end(did)
        while len(self._unresolved) > self.cache_size:
            self._unresolved.popitem(last=False)
