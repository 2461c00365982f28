"""A loopback TCP proxy that can be partitioned: once `freeze()`d (until `heal()`), bytes go nowhere in either
direction and no connection is closed — what a leader sees when the network to Postgres drops packets."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit


class Blackhole:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url, self.host, self.port = url, parts.hostname or "127.0.0.1", parts.port or 5432
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        """Start; the URL to connect through."""
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        parts = urlsplit(self.url)
        netloc = parts.netloc.rsplit("@", 1)
        hostport = f"127.0.0.1:{port}"
        return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{hostport}" if len(netloc) == 2 else hostport))

    def freeze(self) -> None:
        self.flowing.clear()

    def heal(self) -> None:
        self.flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.close()
            return
        for r, w in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(r, w))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()  # while frozen, hold it: neither delivered nor refused
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
