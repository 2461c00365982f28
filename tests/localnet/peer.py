"""The real reference PDS + PLC (`localnet.js`) as a test peer, and a small async XRPC client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

PEER_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Localnet:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}
        self.log: list[str] = []

    def start(self, timeout: float = 90.0) -> dict[str, Any]:
        if not (PEER_DIR / "node_modules").exists():
            subprocess.run(["bash", str(PEER_DIR / "localnet-setup.sh")], check=True)
        # The PDS port is baked into every DID document, so it is chosen before starting.
        env = dict(os.environ, PDS_PORT=str(free_port()), PLC_PORT=str(free_port()),
                   LOCALNET_SEQ_POLL_MAX_MS="20", LOCALNET_EXIT_ON_STDIN_EOF="1")
        self.proc = subprocess.Popen(["node", "localnet.js"], cwd=PEER_DIR, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("LOCALNET_READY "):
                self.info = json.loads(line.split(" ", 1)[1])
                threading.Thread(target=self._drain, daemon=True).start()
                return self.info
            self.log.append(line)
            if time.monotonic() > deadline:
                break
        raise RuntimeError("localnet did not start:\n" + "".join(self.log[-30:]))

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            del self.log[:-200]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    @property
    def pds_url(self) -> str:
        return str(self.info["pdsUrl"])

    @property
    def plc_url(self) -> str:
        return str(self.info["plcUrl"])

    @property
    def ws_url(self) -> str:
        return self.pds_url.replace("http://", "ws://")


class XrpcError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body


class Account:
    def __init__(self, did: str, handle: str, token: str) -> None:
        self.did, self.handle, self.token = did, handle, token


class Xrpc:
    """Async XRPC client for writing to the peer (the ingester shares the event loop)."""

    def __init__(self, base_url: str, admin_password: str = "admin-pass") -> None:
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/xrpc/", timeout=30.0)
        self.admin = httpx.BasicAuth("admin", admin_password)

    async def aclose(self) -> None:
        await self.http.aclose()

    @staticmethod
    def _check(r: httpx.Response) -> Any:
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = r.text
            raise XrpcError(r.status_code, body)
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.content

    async def call(self, nsid: str, body: Any = None, acct: Account | None = None, *, admin: bool = False,
                   content: bytes | None = None, mime: str | None = None) -> Any:
        headers = {"authorization": f"Bearer {acct.token}"} if acct else {}
        if content is not None:
            headers["content-type"] = mime or "application/octet-stream"
            return self._check(await self.http.post(nsid, content=content, headers=headers))
        auth = self.admin if admin else None
        if body is None:
            return self._check(await self.http.post(nsid, headers=headers, auth=auth))
        return self._check(await self.http.post(nsid, json=body, headers=headers, auth=auth))

    async def create_account(self, handle: str) -> Account:
        r = await self.call("com.atproto.server.createAccount", {
            "handle": handle, "password": "password", "email": f"{handle.split('.')[0]}@example.invalid"})
        return Account(r["did"], handle, r["accessJwt"])

    async def create(self, a: Account, collection: str, record: dict[str, Any], rkey: str | None = None) -> dict:
        body: dict[str, Any] = {"repo": a.did, "collection": collection, "record": record}
        if rkey:
            body["rkey"] = rkey
        return await self.call("com.atproto.repo.createRecord", body, a)

    async def put(self, a: Account, collection: str, rkey: str, record: dict[str, Any]) -> dict:
        return await self.call("com.atproto.repo.putRecord",
                               {"repo": a.did, "collection": collection, "rkey": rkey, "record": record}, a)

    async def delete(self, a: Account, collection: str, rkey: str) -> dict:
        return await self.call("com.atproto.repo.deleteRecord",
                               {"repo": a.did, "collection": collection, "rkey": rkey}, a)

    async def apply_writes(self, a: Account, writes: list[dict[str, Any]]) -> dict:
        return await self.call("com.atproto.repo.applyWrites", {"repo": a.did, "writes": writes}, a)

    async def upload_blob(self, a: Account, data: bytes, mime: str) -> dict:
        return (await self.call("com.atproto.repo.uploadBlob", acct=a, content=data, mime=mime))["blob"]
