"""Hostile HTTP hosts on 127.0.0.x for the outbound guard's tests: redirectors, drippers, floods, a counter
of every request that reached them, and an https variant with a throw-away CA (so a loopback server can
play a "public" host while the guard's address check is pointed at it)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Host:
    url: str = ""
    port: int = 0
    hits: list[str] = field(default_factory=list)  # paths requested, in order
    sent: int = 0  # body bytes the flood handed to the socket before the client went away
    inflight: int = 0
    max_inflight: int = 0  # most /slow requests served at once
    # path → the behaviour (one of the paths below, with its query) it should have, e.g. a getRepo that floods
    modes: dict[str, str] = field(default_factory=dict)
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # /hold answers once it is set


def _app(host: Host) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        host.hits.append(request.path_qs)
        path = request.path
        if path in host.modes:
            path, _, query = host.modes[path].partition("?")
            request = request.clone(rel_url=f"{path}?{query}")
        if path == "/hop":
            return web.Response(status=int(request.query.get("status", "302")),
                                headers={"location": request.query["to"]})
        if path == "/loop":
            return web.Response(status=302, headers={"location": "/loop"})
        if path == "/drip":  # a byte every 0.2 s, forever (until the client gives up)
            resp = web.StreamResponse(headers={"content-type": "application/json"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            try:
                while True:
                    await resp.write(b" ")
                    await asyncio.sleep(0.2)
            except (ConnectionError, RuntimeError):
                return resp
        if path == "/flood":  # `n` MiB without a Content-Length
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            chunk = b"\0" * (1 << 16)
            try:
                for _ in range(int(request.query.get("mib", "256")) * 16):
                    await resp.write(chunk)
                    host.sent += len(chunk)
                await resp.write_eof()
            except (ConnectionError, RuntimeError):
                pass
            return resp
        if path == "/hold":
            await host.gate.wait()
            return web.Response(text="released")
        if path == "/slow":
            host.inflight += 1
            host.max_inflight = max(host.max_inflight, host.inflight)
            try:
                await asyncio.sleep(0.1)
            finally:
                host.inflight -= 1
            return web.Response(text="slow")
        if path == "/declared":  # declares a huge body, sends little
            return web.Response(body=b"x" * 10, headers={"content-length": str(1 << 40)})
        text = request.query.get("body", "ok")
        return web.Response(text=text, content_type=request.query.get("type", "text/plain"))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@asynccontextmanager
async def serve(address: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> AsyncIterator[Host]:
    host = Host()
    runner = web.AppRunner(_app(host), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, address, 0, ssl_context=tls)
    await site.start()
    host.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    host.url = f"{'https' if tls else 'http'}://{address}:{host.port}"
    try:
        yield host
    finally:
        await runner.cleanup()


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext  # for serve(tls=…)
    client: ssl.SSLContext  # trusts only the test CA


def make_tls(tmp: Path, names: list[str]) -> Tls:
    """A CA and one leaf certificate for `names` (DNS names or IP literals)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "outbound test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    cert_pem, key_pem = tmp / "leaf.pem", tmp / "leaf.key"
    cert_pem.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_pem, key_pem)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return Tls(server, client)
