"""The outbound guard against hostile hosts on loopback: names resolving to private addresses, redirects to
them, plain http, floods, drippers, and the URL rules under hypothesis.

A loopback server plays a *public* host by serving https (a throw-away CA) on 127.0.0.2 while the guard's
address check is told that 127.0.0.2 is public; everything else about the guard runs for real."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import core.outbound_net
import core.outbound_policy
from core.outbound import Outbound, OutboundError, RefusedAddress, check_url, public_ip
from core.outbound_policy import check_redirect, ip_literal
from tests.hostile.http_hosts import Host, Tls, make_tls, serve

PUBLIC_STANDIN = "127.0.0.2"
DNS = {"public.example": [PUBLIC_STANDIN], "private.example": ["127.0.0.1"],
       "mixed.example": ["10.0.0.1", PUBLIC_STANDIN]}


async def fake_dns(host: str, port: int) -> list[str]:
    if host in DNS:
        return DNS[host]
    if ip_literal(host):
        return [host]
    raise OutboundError("unreachable", "name does not resolve")


@pytest.fixture
def standin_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    real = core.outbound_policy.public_ip
    monkeypatch.setattr(core.outbound_net, "public_ip", lambda a: a == PUBLIC_STANDIN or real(a))


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path, ["public.example", "private.example", "mixed.example"])


@pytest.fixture
async def public(tls: Tls, standin_is_public: None) -> AsyncIterator[Host]:
    async with serve(PUBLIC_STANDIN, tls.server) as host:
        yield host


@pytest.fixture
async def private(tls: Tls) -> AsyncIterator[Host]:
    async with serve("127.0.0.1", tls.server) as host:
        yield host


def guarded(tls: Tls, **kw: object) -> Outbound:
    return Outbound(allow_private=False, resolve=fake_dns, ssl_context=tls.client, **kw)  # type: ignore[arg-type]


# --- the URL and address rules ----------------------------------------------------------------------------

def test_public_ip() -> None:
    for private in ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254", "::1", "fe80::1",
                    "100.64.0.1", "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "fc00::1",
                    "ff02::1", "255.255.255.255", "240.0.0.1", "192.0.2.1", "64:ff9b::7f00:1", "2002:7f00:1::",
                    "2001::1", "::127.0.0.1", "not-an-ip", ""):
        assert not public_ip(private), private
    for ok in ("1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"):
        assert public_ip(ok), ok


def test_check_url() -> None:
    assert check_url("https://pds.example.com/x", allow_private=False) == "https"
    assert check_url("https://1.1.1.1:8443/x", allow_private=False) == "https"
    for bad in ("http://pds.example.com/", "https://127.0.0.1/", "https://[::1]/", "https://10.0.0.1:443/",
                "file:///etc/passwd", "https://user:pw@pds.example.com/", "https:///nohost", "gopher://x",
                "https://169.254.169.254/latest/meta-data", "https://[::ffff:127.0.0.1]/", "https://x:99999/",
                "https://localhost/", "https://LOCALHOST./", "https://a.localhost/", "wss://pds.example.com/",
                "https://[fe80::1%25eth0]/", "https://0.0.0.0/", "javascript:alert(1)", "", "https://"):
        with pytest.raises(RefusedAddress):
            check_url(bad, allow_private=False)
    assert check_url("http://127.0.0.1:2583/", allow_private=True) == "http"
    with pytest.raises(RefusedAddress):
        check_url("ftp://127.0.0.1/", allow_private=True)
    with pytest.raises(RefusedAddress):
        check_redirect("http", "https://127.0.0.1/x", allow_private=True)
    check_redirect("https", "https://pds.example.com/y", allow_private=False)


_host = st.one_of(
    st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,8}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
    st.sampled_from(["localhost", "127.1", "0x7f.1", "2130706433", "[::ffff:7f00:1]", "xn--nxa", "ä.example"]),
    st.text(max_size=20),
)
_url = st.one_of(
    st.text(max_size=80),
    st.builds(lambda s, userinfo, h, port, path: f"{s}://{userinfo}{h}{port}{path}",
              st.sampled_from(["https", "http", "HTTPS", "ftp", "file", "ws", "", "https:"]),
              st.sampled_from(["", "", "u:p@", "@", "a@b@"]), _host,
              st.sampled_from(["", ":443", ":0", ":65536", ":-1", ":x", ":8080"]),
              st.text(max_size=20)),
)


@settings(max_examples=500)
@given(_url)
def test_urls_are_refused_or_https_to_a_public_literal_or_a_name(url: str) -> None:
    try:
        scheme = check_url(url, allow_private=False)
    except RefusedAddress:
        return
    parsed = core.outbound_policy.parse_url(url)
    assert scheme == "https" == parsed.scheme
    assert not parsed.userinfo
    if ip_literal(parsed.host):
        assert public_ip(parsed.host)
    else:  # a name: it is checked again after resolution
        assert parsed.host and parsed.host.lower().rstrip(".") != "localhost"
        try:
            ipaddress.ip_address(parsed.host)
        except ValueError:
            pass
        else:  # pragma: no cover
            raise AssertionError(f"{parsed.host} is an IP literal")


# --- against real sockets ---------------------------------------------------------------------------------

async def test_a_public_host_is_reached_by_name_on_the_address_checked(public: Host, tls: Tls) -> None:
    # public.example exists only in our resolver: reaching it proves the connection went to the address we
    # checked (no second lookup by the system), and TLS still verified the certificate for the name.
    async with guarded(tls) as out:
        body = await out.get(f"https://public.example:{public.port}/ok?body=hi", timeout_s=10, max_bytes=100)
        assert (body.status, body.content) == (200, b"hi")
        # a name with one private and one public address only ever uses the public one
        body = await out.get(f"https://mixed.example:{public.port}/ok", timeout_s=10, max_bytes=100)
        assert body.status == 200


async def test_a_name_resolving_to_a_private_address_is_refused(private: Host, tls: Tls) -> None:
    async with guarded(tls) as out:
        with pytest.raises(RefusedAddress):
            await out.get(f"https://private.example:{private.port}/ok", timeout_s=10, max_bytes=100)
        with pytest.raises(RefusedAddress):  # the same with the system resolver: `localhost` is loopback
            await Outbound(allow_private=False).get(f"https://localhost:{private.port}/", timeout_s=5,
                                                    max_bytes=100)
        with pytest.raises(RefusedAddress):
            await out.addresses(f"wss://private.example:{private.port}/xrpc/x")
    assert private.hits == []


async def test_ip_literals_are_refused_before_any_connection(private: Host, tls: Tls) -> None:
    async with guarded(tls) as out:
        for url in (private.url, f"https://[::ffff:127.0.0.1]:{private.port}/",
                    f"https://[::1]:{private.port}/", f"https://0.0.0.0:{private.port}/"):
            with pytest.raises(RefusedAddress):
                await out.get(url, timeout_s=5, max_bytes=100)
    assert private.hits == []


async def test_redirects_are_checked_on_every_hop(public: Host, private: Host, tls: Tls) -> None:
    base = f"https://public.example:{public.port}"
    async with guarded(tls) as out:
        body = await out.get(f"{base}/hop?to=/ok%3Fbody%3Dmoved", timeout_s=10, max_bytes=100)
        assert body.content == b"moved"
        for target in (f"https://private.example:{private.port}/ok", f"https://127.0.0.1:{private.port}/ok",
                       f"http://public.example:{public.port}/ok", "file:///etc/passwd"):
            with pytest.raises(RefusedAddress):
                await out.get(f"{base}/hop", params={"to": target}, timeout_s=10, max_bytes=100)
        with pytest.raises(RefusedAddress, match="too many redirects"):
            await out.get(f"{base}/loop", timeout_s=10, max_bytes=100)
    assert private.hits == []
    assert public.hits.count("/loop") == 4  # the first request and 3 redirects


async def test_plain_http_is_refused_without_the_switch(public: Host) -> None:
    async with Outbound(allow_private=False, resolve=fake_dns) as out:
        with pytest.raises(RefusedAddress):
            await out.get(f"http://public.example:{public.port}/ok", timeout_s=5, max_bytes=100)
    async with Outbound(allow_private=True) as out:  # the development switch allows both
        async with serve() as local:
            assert (await out.get(f"{local.url}/ok", timeout_s=5, max_bytes=100)).content == b"ok"


async def test_a_flood_is_cut_off_while_streaming() -> None:
    async with serve() as host, Outbound(allow_private=True) as out:
        with pytest.raises(OutboundError) as e:
            await out.get(f"{host.url}/flood?mib=256", timeout_s=60, max_bytes=1 << 20)
        assert e.value.reason == "too_large"
        await asyncio.sleep(0.5)  # let the server notice the closed connection
        assert host.sent < 256 << 20  # we stopped reading: the server could not hand over the whole body
        with pytest.raises(OutboundError) as e:
            await out.get(f"{host.url}/declared", timeout_s=10, max_bytes=1 << 20)
        assert e.value.reason == "too_large"


async def test_a_dripping_host_hits_the_total_deadline() -> None:
    async with serve() as host, Outbound(allow_private=True) as out:
        with pytest.raises(OutboundError) as e:
            await out.get(f"{host.url}/drip", timeout_s=1.0, max_bytes=1 << 20)
        assert e.value.reason == "timeout"
        # the deadline also covers a body read inside stream()
        with pytest.raises(OutboundError) as e:
            async with out.stream("GET", f"{host.url}/drip", timeout_s=1.0, max_bytes=1 << 20) as resp:
                async for _ in resp.iter_bytes():
                    pass
        assert e.value.reason == "timeout"


async def test_requests_per_host_are_limited() -> None:
    async with serve() as host, Outbound(allow_private=True, per_host=2) as out:
        await asyncio.gather(*(out.get(f"{host.url}/slow", timeout_s=30, max_bytes=100) for _ in range(6)))
        assert host.max_inflight <= 2 and len(host.hits) == 6


async def test_unreachable_hosts_are_a_reason_not_a_crash() -> None:
    async with serve() as host:
        port = host.port
    async with Outbound(allow_private=True) as out:  # the server is gone: connection refused
        with pytest.raises(OutboundError) as e:
            await out.get(f"http://127.0.0.1:{port}/", timeout_s=5, max_bytes=100)
        assert e.value.reason == "unreachable"


async def test_waiting_for_a_per_host_slot_is_not_the_peers_time() -> None:
    # One slot for the host, held by a request the server keeps open; the next request queues longer than
    # its own deadline, then gets the slot and still has its whole deadline for the exchange.
    async with serve() as host, Outbound(allow_private=True, per_host=1) as out:
        holder = asyncio.create_task(out.get(f"{host.url}/hold", timeout_s=60, max_bytes=100))
        while not host.hits:  # noqa: ASYNC110 (the server records hits in a list)
            await asyncio.sleep(0.01)
        queued = asyncio.create_task(out.get(f"{host.url}/ok", timeout_s=2, max_bytes=100))
        await asyncio.sleep(3)
        assert not queued.done()
        host.gate.set()
        assert (await holder).content == b"released"
        assert (await queued).content == b"ok"
