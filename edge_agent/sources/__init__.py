"""Hardware sources: each one is `async for event in source` over contract events.

What the sources share lives here: the context the agent hands them (names, seq counter,
a way to report connect/disconnect), a pure line framer, and the one open-read-reopen loop
(`LineDevice`) that every line-speaking source runs on, whatever its `Link`: a TCP stream
here, a serial port read from a thread in `serial_port`. Protocol parsing stays in each
source's module and does no I/O.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Protocol

from pydantic import ValidationError

from event_contract import DeviceState, Event

log = logging.getLogger(__name__)

StateReporter = Callable[[str, DeviceState, str], Awaitable[None]]
"""`await report(device, state, detail)`: the agent turns it into a DeviceStatus event."""


@dataclass(frozen=True, slots=True)
class SourceContext:
    site: str
    gateway: str
    next_seq: Callable[[str], int]
    """The next per-device seq; the agent owns the counters so status events share them."""
    report_state: StateReporter


class Source(Protocol):
    device: str

    # An async generator, so the agent can close it (and the device link) when stopping.
    def __aiter__(self) -> AsyncGenerator[Event, None]: ...

    def counters(self) -> dict[str, float]: ...


_TERMINATOR = re.compile(rb"[\r\n]")


def utc_now() -> datetime:
    return datetime.now(UTC)


class LineFramer:
    """Bytes in, text lines out; a line ends at CR, LF or CRLF.

    Devices disagree on terminators (scanners often send a bare CR, NMEA says CRLF), so any
    of them ends a line and empty lines are dropped. A line longer than `max_line` bytes is
    discarded up to its terminator and counted, so a device spewing garbage cannot grow
    the buffer without bound.
    """

    def __init__(self, max_line: int = 1024) -> None:
        self.max_line = max_line
        self.overlong = 0
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[str]:
        lines: list[str] = []
        *complete, partial = _TERMINATOR.split(data)
        for chunk in complete:
            self._take(chunk, lines, end=True)
        self._take(partial, lines, end=False)
        return lines

    def reset(self) -> None:
        """Forget a partial line, e.g. when the connection drops mid-line."""
        self._buf.clear()
        self._discarding = False

    def _take(self, chunk: bytes, lines: list[str], *, end: bool) -> None:
        if not self._discarding:
            self._buf += chunk
            if len(self._buf) > self.max_line:
                self.overlong += 1
                self._buf.clear()
                self._discarding = True
        if end:
            if self._buf:
                lines.append(self._buf.decode("utf-8", errors="replace"))
            self._buf.clear()
            self._discarding = False


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: doubling from `initial_s` to `max_s`, with jitter so that a fleet of
    gateways does not hammer a device (or a simulator) in lockstep."""

    initial_s: float = 0.5
    max_s: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_s, self.initial_s * 2 ** min(attempt, 16))
        return base * rng.uniform(0.75, 1.0)


class Link(Protocol):
    """An open connection to a device, as the read loop sees it."""

    async def read(self) -> bytes:
        """The next bytes; b"" when the device closed the link, OSError when it was lost."""
        ...

    def close(self) -> None: ...


class LineDevice(ABC):
    """What every line-speaking source shares, whatever its link (TCP, serial): the loop that
    opens the link, frames its bytes into lines, and reopens it with backoff when it drops;
    counters, one log line per distinct problem, and lines turned into events safely.

    Subclasses open their link (`_open_link`, raising one of `open_errors`), say what went
    wrong in words (`_open_error`, `_lost`), turn lines into events (`_on_line`) and
    half-finished state into events when a link ends (`_on_disconnect`). Link problems
    never end the iteration: the device is reported offline, and the loop retries.
    """

    open_errors: ClassVar[tuple[type[BaseException], ...]] = (OSError, TimeoutError)
    opened = "connected"  # in the log: "... scanner-1 at 10.0.0.5:5001: connected"

    def __init__(self, *, device: str, ctx: SourceContext, backoff: Backoff | None,
                 max_line: int, idle_timeout_s: float | None = None) -> None:  # fmt: skip
        self.device = device
        self.ctx = ctx
        self.backoff = backoff or Backoff()
        self.framer = LineFramer(max_line)
        self.idle_timeout_s = idle_timeout_s
        self.stats: Counter[str] = Counter()
        self.last_error: str | None = None
        self._rng = random.Random()

    @abstractmethod
    def _label(self) -> str: ...

    @abstractmethod
    async def _open_link(self) -> Link: ...

    @abstractmethod
    def _open_error(self, err: BaseException) -> str: ...

    @abstractmethod
    def _lost(self, err: BaseException | None) -> str:
        """The offline detail after a link ended: `err` None when the device closed it."""

    @abstractmethod
    def _online_detail(self) -> str: ...

    @abstractmethod
    def _on_line(self, line: str, received_at: datetime) -> list[Event]: ...

    def _on_disconnect(self, received_at: datetime) -> list[Event]:
        return []

    def _events_from(self, line: str, received_at: datetime) -> list[Event]:
        try:
            return self._on_line(line, received_at)
        except ValidationError as err:
            # The parser let through something the contract refuses: drop the line, keep
            # the link. Counted, and logged at debug level so line noise cannot flood the log.
            self.stats["invalid_events"] += 1
            log.debug("%s: dropped a line the contract refuses: %s", self._label(), err)
            return []

    def counters(self) -> dict[str, float]:
        return {**self.stats, "overlong_lines": self.framer.overlong}

    async def _fail(self, message: str) -> None:
        # Log a problem once, not on every retry; the status event carries it to ingest.
        if message != self.last_error:
            log.warning("%s", message)
        self.last_error = message
        await self.ctx.report_state(self.device, DeviceState.OFFLINE, message)

    async def __aiter__(self) -> AsyncGenerator[Event, None]:
        attempt = 0
        while True:
            try:
                link = await self._open_link()
            except self.open_errors as err:
                self.stats["connect_failures"] += 1
                await self._fail(self._open_error(err))
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
                attempt += 1
                continue
            self.stats["connects"] += 1
            self.last_error = None
            self.framer.reset()
            log.info("%s: %s", self._label(), self.opened)
            await self.ctx.report_state(self.device, DeviceState.ONLINE, self._online_detail())
            got_lines = False
            loss: BaseException | None = None
            try:
                while True:
                    try:
                        data = await asyncio.wait_for(link.read(), self.idle_timeout_s)
                    except (OSError, TimeoutError) as err:
                        loss = err
                        break
                    if not data:
                        break
                    now = utc_now()
                    for line in self.framer.feed(data):
                        got_lines = True
                        self.stats["lines"] += 1
                        for event in self._events_from(line, now):
                            self.stats["events"] += 1
                            yield event
            finally:
                link.close()
            for event in self._on_disconnect(utc_now()):
                self.stats["events"] += 1
                yield event
            self.stats["disconnects"] += 1
            await self._fail(self._lost(loss))
            # A link that carried data was healthy: start the backoff again from the bottom.
            attempt = 0 if got_lines else attempt + 1
            await asyncio.sleep(self.backoff.delay(attempt, self._rng))


# Re-exported: the TCP sources import it from here. At the end, as it builds on LineDevice.
from .tcp_link import TcpLineSource  # noqa: E402

__all__ = [
    "Backoff",
    "LineDevice",
    "LineFramer",
    "Link",
    "Source",
    "SourceContext",
    "StateReporter",
    "TcpLineSource",
    "utc_now",
]
