"""Barcode scanners on a serial port, through pyserial: `async for event in source`.

The port is anything pyserial's `serial_for_url` opens: a device path (`/dev/ttyUSB0`,
`/dev/serial/by-id/...`, a pty), or a URL (`socket://host:port` for a network scanner,
`rfc2217://host:port` for a terminal server). pyserial blocks, so each open port is read by
one thread that hands chunks to the event loop with `call_soon_threadsafe`, and closes the
port itself when told to stop. Lines become events in `scanner.ScanLines`, shared with the
TCP source; a port that vanishes (a USB scanner unplugged) is reported offline and reopened
with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any, Protocol

import serial

from event_contract import DeviceState, Event, ReadPoint, Stage

from . import Backoff, LineDevice, SourceContext, utc_now
from .scanner import MAX_LINE_BYTES, OnReject, Rejection, ScanLines

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2  # how often the reader thread looks up to see whether it should stop


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


_Chunk = bytes | Exception

# (errno, words in pyserial's message, what to say): pyserial does not always keep errno.
_OPEN_ERRORS = (
    (errno.ENOENT, "No such file", "no such port; is the scanner plugged in (or simulated)?"),
    (errno.EACCES, "Permission denied", "permission denied; is the user in the dialout group?"),
    (errno.EBUSY, "busy", "port busy; is another program using the scanner?"),
    (errno.ECONNREFUSED, "Connection refused", "connection refused; is the scanner running?"),
)


class ScannerSerialSource(LineDevice):
    """`async for event in ScannerSerialSource(device=..., port_url=..., ...)`: ScanEvents."""

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
    ) -> None:
        super().__init__(device=device, ctx=ctx, backoff=backoff, max_line=MAX_LINE_BYTES)
        self.port_url = port_url
        self.baudrate = baudrate
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

    def _label(self) -> str:
        return f"gateway {self.ctx.gateway}: scanner {self.device} on {self.port_url}"

    def _open_error(self, err: Exception) -> str:
        code, text = getattr(err, "errno", None), str(err)
        for number, words, what in _OPEN_ERRORS:
            if code == number or words in text:
                return f"{self._label()}: {what}"
        return f"{self._label()}: cannot open: {text or type(err).__name__}"

    def _open(self) -> serial.SerialBase:
        return serial.serial_for_url(self.port_url, baudrate=self.baudrate, timeout=READ_TIMEOUT_S)

    async def __aiter__(self) -> AsyncGenerator[Event, None]:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                port = await asyncio.to_thread(self._open)
            except (serial.SerialException, OSError, ValueError) as err:
                self.stats["connect_failures"] += 1
                await self._fail(self._open_error(err))
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
                attempt += 1
                continue
            self.stats["connects"] += 1
            self.last_error = None
            self.framer.reset()
            log.info("%s: opened", self._label())
            await self.ctx.report_state(self.device, DeviceState.ONLINE, f"opened {self.port_url}")
            chunks: asyncio.Queue[_Chunk] = asyncio.Queue()
            stop = threading.Event()
            reader = threading.Thread(
                target=_read_port,
                args=(port, stop, loop, chunks),
                name=f"serial {self.device}",
                daemon=True,
            )
            reader.start()
            got_lines = False
            try:
                while True:
                    chunk = await chunks.get()
                    if isinstance(chunk, Exception):
                        reason = f"port lost ({chunk})"
                        break
                    now = utc_now()
                    for line in self.framer.feed(chunk):
                        got_lines = True
                        self.stats["lines"] += 1
                        for event in self._events_from(line, now):
                            self.stats["events"] += 1
                            yield event
            finally:
                stop.set()  # the thread closes the port within READ_TIMEOUT_S
            self.stats["disconnects"] += 1
            await self._fail(f"{self._label()}: {reason}; reopening")
            # A port that carried data was healthy: start the backoff again from the bottom.
            attempt = 0 if got_lines else attempt + 1
            await asyncio.sleep(self.backoff.delay(attempt, self._rng))

    def _on_line(self, line: str, received_at: datetime) -> list[Event]:
        return self.lines.events(line, received_at)


def _read_port(
    port: serial.SerialBase,
    stop: threading.Event,
    loop: asyncio.AbstractEventLoop,
    chunks: asyncio.Queue[_Chunk],
) -> None:
    """The reader thread: owns the port from here on, and closes it on the way out."""

    def hand_over(item: _Chunk) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            loop.call_soon_threadsafe(chunks.put_nowait, item)

    try:
        while not stop.is_set():
            data = port.read(max(1, port.in_waiting))
            if data:
                hand_over(data)
    except (serial.SerialException, OSError) as err:
        if not stop.is_set():
            hand_over(err)
    finally:
        with contextlib.suppress(Exception):
            port.close()
