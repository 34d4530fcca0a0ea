"""A simulated serial device on a pseudo-terminal, like gpsd's `gpsfake`.

The client opens the pty's slave side as if it were `/dev/ttyUSB0`; the simulator writes to
the master side. Writes happen in a thread on a non-blocking fd with `select`: a pty's
buffer is small (about 4 KB on Linux), and a blocking write into a full one, made from the
event loop, would stall every other task until the client read.

A stable `link` path (a symlink to the current `/dev/pts/N`) lets a test hang the device up
and bring it back, as when a USB scanner is unplugged and plugged in again: the client is
configured with the link and finds the new pty behind it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import tty
from pathlib import Path

log = logging.getLogger(__name__)

MAX_QUEUED_WRITES = 10_000  # beyond this a client is not reading: drop, and count


class PtyDevice:
    """`dev = PtyDevice(link); dev.open(); dev.send(b"...\\r"); dev.close()`."""

    def __init__(
        self, link: str | os.PathLike[str] | None = None, name: str = "pty device"
    ) -> None:
        self.link = Path(link) if link is not None else None
        self.name = name
        self.dropped = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_name: str | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(MAX_QUEUED_WRITES)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def is_open(self) -> bool:
        return self._master is not None

    @property
    def path(self) -> str:
        """What a client opens: the link if there is one, else the slave's `/dev/pts/N`."""
        if self.link is not None:
            return str(self.link)
        if self._slave_name is None:
            raise RuntimeError(f"{self.name} not open")
        return self._slave_name

    def open(self) -> None:
        if self._master is not None:
            return
        master, slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation, bytes arrive as the device sent them.
        tty.setraw(slave)
        os.set_blocking(master, False)
        # The simulator keeps the slave open so that a client closing and reopening the port
        # does not hang the pty up.
        self._master, self._slave, self._slave_name = master, slave, os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(f".{self.link.name}.tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._slave_name)
            tmp.replace(self.link)  # atomic: a client never sees a half-made link
        self._stop.clear()
        self._queue = queue.Queue(MAX_QUEUED_WRITES)
        self._thread = threading.Thread(target=self._write_loop, args=(master,), daemon=True)
        self._thread.start()
        log.info("%s on %s", self.name, self.path)

    def send(self, data: bytes) -> bool:
        """Queue bytes for the client; False if the pty is closed or the queue is full."""
        if self._master is None:
            return False
        try:
            self._queue.put_nowait(data)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def close(self) -> None:
        """Hang up: the client's next read fails and the link disappears. Blocks briefly."""
        if self._master is None:
            return
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = self._slave_name = None
        self._thread = None

    def _write_loop(self, master: int) -> None:
        while not self._stop.is_set():
            try:
                data = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if data is None:
                return
            view = memoryview(data)
            while view and not self._stop.is_set():
                # Wait for room with a timeout, so that close() is never stuck behind a
                # client that stopped reading.
                _, writable, _ = select.select([], [master], [], 0.2)
                if not writable:
                    continue
                try:
                    view = view[os.write(master, view) :]
                except BlockingIOError:
                    continue
                except OSError as err:
                    log.warning("%s: write failed: %s", self.name, err)
                    return
