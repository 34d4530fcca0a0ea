"""Line devices on a serial port, through pyserial: the link the shared read loop reads.

The port is anything pyserial's `serial_for_url` opens: a device path (`/dev/ttyUSB0`,
`/dev/serial/by-id/...`, a pty), or a URL (`socket://host:port` for a network device,
`rfc2217://host:port` for a terminal server). pyserial blocks, so each open port is read by
one thread that hands chunks to the event loop and closes the port itself when told to stop.

The hand-over is bounded (`max_chunks`): when the event loop falls behind, the reader thread
waits, and the bytes wait in the port's own buffer (the kernel's, the USB adapter's, then
the device's flow control) rather than in an unbounded queue in our memory. Each time the
thread has to wait is counted (`serial_handover_full`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import threading
from collections import Counter
from typing import ClassVar

import serial

from . import Backoff, LineDevice, Link, SourceContext

READ_TIMEOUT_S = 0.2  # how often the reader thread looks up to see whether it should stop
MAX_CHUNKS = 64

_Chunk = bytes | Exception

# (errno, words in pyserial's message, what to say): pyserial does not always keep errno.
_OPEN_ERRORS = (
    (errno.ENOENT, "No such file", "no such port; is the {what} plugged in (or simulated)?"),
    (errno.EACCES, "Permission denied", "permission denied; is the user in the dialout group?"),
    (errno.EBUSY, "busy", "port busy; is another program using the {what}?"),
    (errno.ECONNREFUSED, "Connection refused", "connection refused; is the {what} running?"),
)


class SerialLink:
    """An open port read by its own thread; `await read()` takes the next chunk."""

    def __init__(
        self, port: serial.SerialBase, *, name: str, max_chunks: int, stats: Counter[str]
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._chunks: asyncio.Queue[_Chunk] = asyncio.Queue()  # bounded by `_room`
        self._room = threading.Semaphore(max_chunks)
        self._stop = threading.Event()
        self._stats = stats
        self._thread = threading.Thread(
            target=self._read_port, args=(port,), name=name, daemon=True
        )
        self._thread.start()

    async def read(self) -> bytes:
        chunk = await self._chunks.get()
        if isinstance(chunk, Exception):
            raise chunk if isinstance(chunk, OSError) else OSError(str(chunk))
        self._room.release()
        return chunk

    def close(self) -> None:
        self._stop.set()  # the thread closes the port within READ_TIMEOUT_S

    def _hand_over(self, item: _Chunk) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            self._loop.call_soon_threadsafe(self._chunks.put_nowait, item)

    def _wait_for_room(self) -> bool:
        """Block until the event loop has taken a chunk; False if told to stop meanwhile."""
        if self._room.acquire(blocking=False):
            return True
        self._stats["serial_handover_full"] += 1  # only this thread writes this key
        while not self._room.acquire(timeout=READ_TIMEOUT_S):
            if self._stop.is_set():
                return False
        return True

    def _read_port(self, port: serial.SerialBase) -> None:
        """The reader thread: owns the port from here on, and closes it on the way out."""
        try:
            while not self._stop.is_set():
                data = port.read(max(1, port.in_waiting))
                if data:
                    if not self._wait_for_room():
                        return
                    self._hand_over(data)
        except (serial.SerialException, OSError) as err:
            if not self._stop.is_set():
                self._hand_over(err)
        finally:
            with contextlib.suppress(Exception):
                port.close()


class SerialLineSource(LineDevice):
    """A line device on a serial port or pyserial URL, on the shared loop (LineDevice)."""

    what = "device"  # used in messages: "scanner scanner-1 on /dev/ttyUSB0: ..."
    opened = "opened"
    open_errors: ClassVar[tuple[type[BaseException], ...]] = (
        serial.SerialException,
        OSError,
        ValueError,
    )

    def __init__(
        self,
        *,
        device: str,
        port_url: str,
        baudrate: int,
        ctx: SourceContext,
        backoff: Backoff | None = None,
        max_line: int = 1024,
        idle_timeout_s: float | None = None,
        max_chunks: int = MAX_CHUNKS,
    ) -> None:
        super().__init__(
            device=device,
            ctx=ctx,
            backoff=backoff,
            max_line=max_line,
            idle_timeout_s=idle_timeout_s,
        )
        self.port_url = port_url
        self.baudrate = baudrate
        self.max_chunks = max_chunks

    def _label(self) -> str:
        return f"gateway {self.ctx.gateway}: {self.what} {self.device} on {self.port_url}"

    def _online_detail(self) -> str:
        return f"opened {self.port_url}"

    async def _open_link(self) -> Link:
        port = await asyncio.to_thread(
            serial.serial_for_url, self.port_url, baudrate=self.baudrate, timeout=READ_TIMEOUT_S
        )
        return SerialLink(
            port, name=f"serial {self.device}", max_chunks=self.max_chunks, stats=self.stats
        )

    def _open_error(self, err: BaseException) -> str:
        code, text = getattr(err, "errno", None), str(err)
        for number, words, what in _OPEN_ERRORS:
            if code == number or words in text:
                return f"{self._label()}: {what.format(what=self.what)}"
        return f"{self._label()}: cannot open: {text or type(err).__name__}"

    def _lost(self, err: BaseException | None) -> str:
        if err is None:
            reason = "port closed"
        elif isinstance(err, TimeoutError):
            reason = f"sent nothing for {self.idle_timeout_s:g} s"
        else:
            reason = f"port lost ({err})"
        return f"{self._label()}: {reason}; reopening"
