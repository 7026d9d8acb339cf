"""A TCP proxy on loopback that can be cut: the database "goes down" for fault tests and
the bench (``emojibot bench slack --fault db-outage``) the way a network or a server
restart takes it down, without touching the real server.

``cut()`` closes the listening socket and resets every open connection (clients see a
connection reset, then connection refused); ``restore()`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1", port: int = 0):
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task] = set()

    @property
    def up(self) -> bool:
        return self._server is not None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._conns |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._conns.discard(dst)
            with contextlib.suppress(Exception):
                dst.close()

    async def cut(self) -> None:
        """Refuse new connections and reset the open ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._conns):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._conns.clear()
        for t in list(self._pumps):
            t.cancel()

    async def restore(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self.port)

    async def close(self) -> None:
        await self.cut()
