"""A TCP server that sends the same lines to every connected client, like a device in
TCP server mode (a GNSS receiver's data port, a fixed scanner's host interface)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

# A client that lets this much pile up unread is not reading: drop it, as a device would.
MAX_CLIENT_BACKLOG = 1 << 20


class LineServer:
    def __init__(self, host: str, port: int, name: str) -> None:
        self.host = host
        self.requested_port = port
        self.name = name
        self.port: int | None = None  # the bound port, known after start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()  # one per connected client
        self._client_joined = asyncio.Condition()

    @property
    def clients(self) -> int:
        return len(self._writers)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s listening on %s:%d", self.name, self.host, self.port)

    async def wait_for_client(self, timeout_s: float | None = 10.0) -> None:
        """Return once at least one client is connected (for tests and demos)."""
        async with asyncio.timeout(timeout_s), self._client_joined:
            await self._client_joined.wait_for(lambda: bool(self._writers))

    def send(self, data: bytes) -> int:
        """Write to every client; returns how many clients got it."""
        sent = 0
        for writer in list(self._writers):
            if writer.is_closing() or writer.transport.get_write_buffer_size() > MAX_CLIENT_BACKLOG:
                self._drop(writer)
                continue
            writer.write(data)
            sent += 1
        return sent

    def drop_clients(self) -> int:
        """Close every client connection, like a cable pull; the server keeps listening."""
        dropped = len(self._writers)
        for writer in list(self._writers):
            self._drop(writer)
        return dropped

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop_clients()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        # Let connection handlers see their client dropped and end, rather than be cancelled
        # later by the loop's shutdown (which asyncio's stream callback logs as an error).
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2)

    def _drop(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        # abort(), not close(): a pulled cable does not flush what is still buffered.
        writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._writers.add(writer)
        async with self._client_joined:
            self._client_joined.notify_all()
        try:
            # Devices ignore what the host sends; read only to notice the client leaving.
            while await reader.read(1024):
                pass
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


class TcpDevice:
    """A simulated device in TCP server mode: a `LineServer` and one task producing lines.

    Subclasses set `name` and implement `_produce`; `_should_produce` may keep the task off
    (a scanner that only scans on demand).
    """

    name = "device"

    def __init__(self, host: str, port: int) -> None:
        self.server = LineServer(host, port, self.name)
        self._task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        if self.server.port is None:
            raise RuntimeError(f"{self.name} not started")
        return self.server.port

    def _should_produce(self) -> bool:
        return True

    async def _produce(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        await self.server.start()
        if self._should_produce():
            self._task = asyncio.create_task(self._produce(), name=self.name)

    async def serve_forever(self) -> None:
        if self.server.port is None:
            await self.start()
        await self._closed.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.server.close()
        self._closed.set()

    def drop_clients(self) -> int:
        """Close every client connection, like a pulled cable; keeps listening."""
        return self.server.drop_clients()

    async def wait_for_client(self, timeout_s: float | None = 10.0) -> None:
        await self.server.wait_for_client(timeout_s)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
