"""NMEA 0183 over a real pseudo-terminal, as a USB GNSS receiver: fixes, corrupt sentences,
and the receiver unplugged and plugged in again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.agent import build_source
from edge_agent.config import NmeaSerialSourceConfig
from edge_agent.sources import Backoff, SourceContext
from edge_agent.sources.nmea_serial import NmeaSerialSource
from event_contract import DeviceState, PositionEvent
from simulators.nmea_encode import SimFix, encode_epoch
from simulators.pty_device import PtyDevice

WAIT_S = 10


@dataclass
class Harness:
    source: NmeaSerialSource
    events: asyncio.Queue[PositionEvent] = field(default_factory=asyncio.Queue)
    states: list[tuple[DeviceState, str]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_state(self, state: DeviceState, *, after: int = 0, words: str = "") -> str:
        def found() -> str | None:
            hits = [d for s, d in self.states[after:] if s is state and words in d]
            return hits[0] if hits else None

        async with asyncio.timeout(WAIT_S), self.changed:
            await self.changed.wait_for(lambda: found() is not None)
        return found() or ""

    async def next_events(self, n: int) -> list[PositionEvent]:
        async with asyncio.timeout(WAIT_S):
            return [await self.events.get() for _ in range(n)]


def ctx_for(harness: list[Harness]) -> SourceContext:
    seq = iter(range(1000))

    async def report(device: str, state: DeviceState, detail: str) -> None:
        h = harness[0]
        h.states.append((state, detail))
        async with h.changed:
            h.changed.notify_all()

    return SourceContext(
        site="wh1", gateway="truck-1", next_seq=lambda d: next(seq), report_state=report
    )


@contextlib.asynccontextmanager
async def running(port_url: str) -> AsyncIterator[Harness]:
    holder: list[Harness] = []
    config = NmeaSerialSourceConfig(type="nmea_serial", device="gps-1", port_url=port_url)
    source = NmeaSerialSource(config, ctx_for(holder), backoff=Backoff(0.05, 0.2))
    harness = Harness(source)
    holder.append(harness)

    async def pump() -> None:
        async with contextlib.aclosing(aiter(source)) as events:
            async for event in events:
                assert isinstance(event, PositionEvent)
                await harness.events.put(event)

    task = asyncio.create_task(pump())
    try:
        yield harness
    finally:
        task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
    if isinstance(outcome, Exception):
        raise outcome


def epochs(start: datetime, count: int, lat: float = 52.37) -> bytes:
    lines: list[str] = []
    for n in range(count):
        at = start + timedelta(seconds=n)
        lines += encode_epoch(SimFix(at, lat + n * 1e-5, 4.89, speed_mps=1.0))
    return "".join(f"{line}\r\n" for line in lines).encode()


def test_fixes_over_a_pty_survive_corruption_and_an_unplugged_receiver(tmp_path: Path) -> None:
    async def scenario() -> None:
        pty = PtyDevice(tmp_path / "gps", name="gps pty")
        pty.open()
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
        try:
            async with running(pty.path) as h:
                await h.wait_state(DeviceState.ONLINE)
                # Three epochs: two fixes now, the third when the next epoch starts.
                assert pty.send(epochs(start, 3))
                first = await h.next_events(2)
                assert [round(e.lat, 5) for e in first] == [52.37, 52.37001]
                assert first[0].device_time == start and first[0].fix_quality == 1
                # A sentence with a broken checksum is counted, and the stream goes on.
                good = encode_epoch(SimFix(start + timedelta(seconds=3), 52.37003, 4.89))
                corrupt = good[0][:-2] + ("00" if good[0][-2:] != "00" else "11")
                assert pty.send(f"{corrupt}\r\n{good[1]}\r\n".encode())
                assert pty.send(epochs(start + timedelta(seconds=4), 1, lat=52.37004))
                (third,) = await h.next_events(1)
                assert third.device_time == start + timedelta(seconds=2)
                counters = h.source.counters()
                assert counters["nmea_bad_checksum"] == 1
                # Unplugged: reported offline, with the reason; plugged in: read again.
                mark = len(h.states)
                pty.close()
                lost = await h.wait_state(DeviceState.OFFLINE, after=mark)
                assert lost.startswith(f"gateway truck-1: GPS gps-1 on {pty.path}: ")
                assert "is the GPS plugged in" in await h.wait_state(
                    DeviceState.OFFLINE, after=mark, words="no such port"
                )
                mark = len(h.states)
                pty.open()
                await h.wait_state(DeviceState.ONLINE, after=mark)
                later = start + timedelta(seconds=10)
                assert pty.send(epochs(later, 2, lat=52.3701))
                # What the unplug cut short is flushed first (the parser's pending epochs).
                events = await h.next_events(1)
                while events[-1].device_time != later:
                    events += await h.next_events(1)
                assert round(events[-1].lat, 4) == 52.3701
                assert h.source.counters()["connects"] == 2
        finally:
            pty.close()

    asyncio.run(scenario())


def test_an_nmea_serial_config_builds_the_serial_source() -> None:
    config = NmeaSerialSourceConfig(type="nmea_serial", device="gps-1", port_url="/dev/ttyACM0")
    source = build_source(config, ctx_for([]))
    assert isinstance(source, NmeaSerialSource)
    assert source.baudrate == 4800 and source.port_url == "/dev/ttyACM0"
