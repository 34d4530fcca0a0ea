"""Hardware sources: each one is `async for event in source` over contract events.

What the sources share lives here: the context the agent hands them (names, seq counter,
a way to report connect/disconnect), a pure line framer, and the TCP connect-read-reconnect
loop that both the NMEA and the scanner source run on. Protocol parsing stays in each
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
from typing import Protocol

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


class LineDevice(ABC):
    """What every line-speaking source shares, whatever its link (TCP, serial): a framer,
    counters, one log line per distinct problem, and lines turned into events safely."""

    def __init__(self, *, device: str, ctx: SourceContext, backoff: Backoff | None,
                 max_line: int) -> None:  # fmt: skip
        self.device = device
        self.ctx = ctx
        self.backoff = backoff or Backoff()
        self.framer = LineFramer(max_line)
        self.stats: Counter[str] = Counter()
        self.last_error: str | None = None
        self._rng = random.Random()

    @abstractmethod
    def _label(self) -> str: ...

    @abstractmethod
    def _on_line(self, line: str, received_at: datetime) -> list[Event]: ...

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


class TcpLineSource(LineDevice):
    """Connects to a device, frames its bytes into lines, reconnects when the link drops.

    Subclasses turn lines into events (`_on_line`) and say what to do with half-finished
    state when a connection ends (`_on_disconnect`). Connection problems never end the
    iteration: they are reported as the device going offline, and the loop retries.
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
        super().__init__(device=device, ctx=ctx, backoff=backoff, max_line=max_line)
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s

    def _on_disconnect(self, received_at: datetime) -> list[Event]:
        return []

    def _label(self) -> str:
        return f"gateway {self.ctx.gateway}: {self.what} {self.device} at {self.host}:{self.port}"

    def _connect_error(self, err: BaseException) -> str:
        if isinstance(err, ConnectionRefusedError):
            return f"{self._label()} refused the connection; is the {self.hint} running?"
        if isinstance(err, TimeoutError):
            return (
                f"{self._label()} did not answer within {self.connect_timeout_s:g} s; "
                "check the address and the network"
            )
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        return f"{self._label()}: cannot connect: {reason}"

    async def __aiter__(self) -> AsyncGenerator[Event, None]:
        attempt = 0
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.connect_timeout_s
                )
            except (OSError, TimeoutError) as err:
                self.stats["connect_failures"] += 1
                await self._fail(self._connect_error(err))
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
                attempt += 1
                continue
            self.stats["connects"] += 1
            self.last_error = None
            self.framer.reset()
            log.info("%s: connected", self._label())
            await self.ctx.report_state(
                self.device, DeviceState.ONLINE, f"connected to {self.host}:{self.port}"
            )
            got_lines = False
            try:
                while True:
                    try:
                        data = await asyncio.wait_for(reader.read(4096), self.idle_timeout_s)
                    except TimeoutError:
                        reason = f"sent nothing for {self.idle_timeout_s:g} s"
                        break
                    except OSError as err:
                        reason = f"connection lost: {err.strerror or err}"
                        break
                    if not data:
                        reason = "closed the connection"
                        break
                    now = utc_now()
                    for line in self.framer.feed(data):
                        got_lines = True
                        self.stats["lines"] += 1
                        for event in self._events_from(line, now):
                            self.stats["events"] += 1
                            yield event
            finally:
                writer.close()
            for event in self._on_disconnect(utc_now()):
                self.stats["events"] += 1
                yield event
            self.stats["disconnects"] += 1
            await self._fail(f"{self._label()} {reason}; reconnecting")
            # A link that carried data was healthy: start the backoff again from the bottom.
            attempt = 0 if got_lines else attempt + 1
            await asyncio.sleep(self.backoff.delay(attempt, self._rng))
