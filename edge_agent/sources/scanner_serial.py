"""Barcode scanners on a serial port, through pyserial: `async for event in source`.

The port is a device path (`/dev/ttyUSB0`, a pty) or a pyserial URL (`socket://host:port`
for a network scanner); `serial_port` reads it from a thread and the shared loop reopens it
with backoff when it vanishes (a USB scanner unplugged). Lines become events in
`scanner.ScanLines`, shared with the TCP source.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any, Protocol

from event_contract import Event, ReadPoint, Stage

from . import Backoff, SourceContext
from .scanner import MAX_LINE_BYTES, OnReject, Rejection, ScanLines
from .serial_port import MAX_CHUNKS, SerialLineSource


class _ReadPointLike(Protocol):
    door: Any
    station: Any


class ScannerSerialConfigLike(Protocol):
    """What `from_config` needs; `edge_agent.config.ScannerSerialSourceConfig` has it."""

    device: str
    port_url: str
    baudrate: int
    read_point: _ReadPointLike
    stage: Stage | None


class ScannerSerialSource(SerialLineSource):
    """`async for event in ScannerSerialSource(device=..., port_url=..., ...)`: ScanEvents."""

    what = "scanner"

    def __init__(
        self,
        *,
        device: str,
        port_url: str,
        baudrate: int,
        read_point: ReadPoint,
        stage: Stage | None,
        ctx: SourceContext,
        backoff: Backoff | None = None,
        on_reject: OnReject | None = None,
        max_chunks: int = MAX_CHUNKS,
    ) -> None:
        # No idle timeout: a scanner at a quiet door may rightly say nothing for hours.
        super().__init__(
            device=device,
            port_url=port_url,
            baudrate=baudrate,
            ctx=ctx,
            backoff=backoff,
            max_line=MAX_LINE_BYTES,
            max_chunks=max_chunks,
        )
        self.read_point = read_point
        self.stage = stage
        self.lines = ScanLines(
            device=device,
            ctx=ctx,
            read_point=read_point,
            stage=stage,
            stats=self.stats,
            label=self._label,
            on_reject=on_reject,
        )

    @classmethod
    def from_config(
        cls, config: ScannerSerialConfigLike, ctx: SourceContext, **kwargs: Any
    ) -> ScannerSerialSource:
        """The agent's constructor: `SOURCE_TYPES[ScannerSerialSourceConfig]`."""
        read_point = ReadPoint(
            site=ctx.site, door=config.read_point.door, station=config.read_point.station
        )
        return cls(
            device=config.device,
            port_url=config.port_url,
            baudrate=config.baudrate,
            read_point=read_point,
            stage=config.stage,
            ctx=ctx,
            **kwargs,
        )

    @property
    def last_rejections(self) -> deque[Rejection]:
        return self.lines.last_rejections

    def _on_line(self, line: str, received_at: datetime) -> list[Event]:
        return self.lines.events(line, received_at)
