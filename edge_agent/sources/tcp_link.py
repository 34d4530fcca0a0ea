"""Line devices on TCP: the stream link the shared read loop (`LineDevice`) reads."""

from __future__ import annotations

import asyncio

from . import Backoff, LineDevice, Link, SourceContext


class _StreamLink:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        return await self._reader.read(4096)

    def close(self) -> None:
        self._writer.close()


class TcpLineSource(LineDevice):
    """A line device on TCP: connects, reads, reconnects when the link drops (LineDevice).

    Subclasses turn lines into events (`_on_line`), may greet the device on every
    connection (`_on_connect`), and say what to do with half-finished state when a
    connection ends (`_on_disconnect`).
    """

    what = "device"  # used in messages: "GPS truck-1-gps at 10.0.0.5:5001 ..."
    hint = "device"  # "... refused the connection; is the {hint} running?"

    def __init__(
        self,
        *,
        device: str,
        host: str,
        port: int,
        ctx: SourceContext,
        backoff: Backoff | None = None,
        connect_timeout_s: float = 5.0,
        idle_timeout_s: float | None = None,
        max_line: int = 1024,
    ) -> None:
        super().__init__(
            device=device,
            ctx=ctx,
            backoff=backoff,
            max_line=max_line,
            idle_timeout_s=idle_timeout_s,
        )
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s

    def _label(self) -> str:
        return f"gateway {self.ctx.gateway}: {self.what} {self.device} at {self.host}:{self.port}"

    def _online_detail(self) -> str:
        return f"connected to {self.host}:{self.port}"

    async def _open_link(self) -> Link:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.connect_timeout_s
        )
        try:
            await asyncio.wait_for(self._on_connect(writer), self.connect_timeout_s)
        except BaseException:
            writer.close()
            raise
        return _StreamLink(reader, writer)

    async def _on_connect(self, writer: asyncio.StreamWriter) -> None:
        """Say what the device needs to hear before it talks (gpsd's WATCH); nothing here."""

    def _open_error(self, err: BaseException) -> str:
        if isinstance(err, ConnectionRefusedError):
            return f"{self._label()} refused the connection; is the {self.hint} running?"
        if isinstance(err, TimeoutError):
            return (
                f"{self._label()} did not answer within {self.connect_timeout_s:g} s; "
                "check the address and the network"
            )
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        return f"{self._label()}: cannot connect: {reason}"

    def _lost(self, err: BaseException | None) -> str:
        if err is None:
            reason = "closed the connection"
        elif isinstance(err, TimeoutError):
            reason = f"sent nothing for {self.idle_timeout_s:g} s"
        else:
            reason = f"connection lost: {getattr(err, 'strerror', None) or err}"
        return f"{self._label()} {reason}; reconnecting"
