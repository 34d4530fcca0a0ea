"""The GPS simulator as a real peer: the NMEA TCP source reads it (and reconnects after a
drop), and on a pseudo-terminal it is a serial receiver whose seeded faults the parser rejects."""

from __future__ import annotations

import asyncio
import os
import select
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edge_agent.config import NmeaTcpSourceConfig
from edge_agent.sources import Backoff, LineFramer, SourceContext
from edge_agent.sources.nmea import (
    BAD_CHECKSUM,
    JUMP,
    NO_POSITION,
    NmeaParser,
    NmeaTcpSource,
)
from event_contract import DeviceState, PositionEvent
from simulators.gps import GpsSimConfig, GpsSimulator
from tests.nmea_helpers import feed_all


class Recorder:
    """The agent's side of a source: seq counters and state reports, recorded."""

    def __init__(self) -> None:
        self.seq = 0
        self.states: list[tuple[DeviceState, str]] = []
        self.changed = asyncio.Event()

    def ctx(self) -> SourceContext:
        return SourceContext(
            site="wh1", gateway="gw-test", next_seq=self.next_seq, report_state=self.report
        )

    def next_seq(self, device: str) -> int:
        self.seq += 1
        return self.seq

    async def report(self, device: str, state: DeviceState, detail: str) -> None:
        self.states.append((state, detail))
        self.changed.set()

    async def wait_for_reports(self, count: int) -> None:
        while len(self.states) < count:
            self.changed.clear()
            await self.changed.wait()


async def take(source: NmeaTcpSource, events: list, count: int) -> None:
    async for event in source:
        events.append(event)
        if len(events) >= count:
            return


def test_tcp_source_reads_the_simulator_and_reconnects_after_a_drop() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with GpsSimulator(GpsSimConfig(rate_hz=20, speed_mps=15, noise_m=2)) as gps:
            config = NmeaTcpSourceConfig(
                type="nmea_tcp", device="truck-9-gps", host=gps.host, port=gps.port
            )
            source = NmeaTcpSource(config, recorder.ctx(), backoff=Backoff(0.05, 0.2))
            events: list[Any] = []
            async with asyncio.timeout(15):
                iterator = aiter(source)
                while len(events) < 5:
                    events.append(await anext(iterator))
                assert gps.drop_clients() == 1
                while len(events) < 10:
                    events.append(await anext(iterator))
                await iterator.aclose()
        states = [state for state, _ in recorder.states]
        assert states == [DeviceState.ONLINE, DeviceState.OFFLINE, DeviceState.ONLINE]
        assert "closed the connection; reconnecting" in recorder.states[1][1]
        assert all(isinstance(e, PositionEvent) and e.device == "truck-9-gps" for e in events)
        seqs = [e.seq for e in events]
        assert seqs == sorted(set(seqs))
        times = [e.device_time for e in events]
        assert times == sorted(set(times)), "one event per epoch, in order"
        for event in events:
            # On the demo route (about 52.00N 4.40E), noise of a few metres at most.
            assert 51.99 < event.lat < 52.01 and 4.39 < event.lon < 4.42
            assert event.speed_mps == pytest.approx(15, abs=0.01)
            assert abs(event.received_at - event.device_time) < timedelta(seconds=2)
        assert source.counters()["connects"] == 2

    asyncio.run(scenario())


def test_tcp_source_says_which_device_refused_and_keeps_retrying() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with GpsSimulator(GpsSimConfig(rate_hz=10)) as gps:
            port = gps.port
        # The simulator is gone: its port now refuses connections.
        config = NmeaTcpSourceConfig(
            type="nmea_tcp", device="truck-9-gps", host="127.0.0.1", port=port
        )
        source = NmeaTcpSource(config, recorder.ctx(), backoff=Backoff(0.01, 0.02))
        task = asyncio.create_task(take(source, [], 1))
        async with asyncio.timeout(10):
            await recorder.wait_for_reports(3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert source.stats["connect_failures"] >= 3
        assert recorder.states[0] == (
            DeviceState.OFFLINE,
            f"gateway gw-test: GPS truck-9-gps at 127.0.0.1:{port} refused the connection; "
            "is the GPS receiver (or simulator) running?",
        )

    asyncio.run(scenario())


def read_pty_lines(path: str, count: int, timeout_s: float = 10.0) -> list[str]:
    """Lines from a serial port, as a gateway reading /dev/ttyACM0 would get them."""
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
    framer, lines = LineFramer(256), []
    deadline = time.monotonic() + timeout_s
    try:
        while len(lines) < count:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"only {len(lines)} lines from {path} in {timeout_s} s"
            lines += framer.feed(os.read(fd, 4096))
    finally:
        os.close(fd)
    return lines


def test_gps_simulator_on_a_pty_sends_sentences_that_decode() -> None:
    async def scenario() -> None:
        async with GpsSimulator(GpsSimConfig(rate_hz=20, pty=True, speed_mps=12)) as gps:
            lines = await asyncio.to_thread(read_pty_lines, gps.pty_path, 40)
            sent = {e.fix.time: e.fix for e in gps.sent}
        parser = NmeaParser(now=datetime.now(UTC))
        got = feed_all(parser, lines[2:])  # the first lines may be a partial epoch
        assert len(got) >= 15 and set(parser.rejects) <= {NO_POSITION}
        for fix in got:
            assert abs(fix.lat - sent[fix.time].lat) < 1e-6
            assert abs(fix.lon - sent[fix.time].lon) < 1e-6
            assert fix.speed_mps == pytest.approx(12, abs=1e-3)

    asyncio.run(scenario())


def test_gps_simulator_faults_are_seeded_and_rejected_by_the_parser() -> None:
    async def scenario(seed: int) -> list[tuple[datetime, str | None]]:
        config = GpsSimConfig(
            rate_hz=20, pty=True, seed=seed, corrupt_rate=0.2, jump_rate=0.1, dropout_rate=0.05
        )
        async with GpsSimulator(config) as gps:
            lines = await asyncio.to_thread(read_pty_lines, gps.pty_path, 120)
            sent = list(gps.sent)
            assert gps.faults["dropout"] > 0
        parser = NmeaParser()
        got = {f.time for f in feed_all(parser, lines)}
        faults = {e.fix.time: e.fault for e in sent}
        # A corrupt epoch may still have one good sentence, whose fix is fine.
        assert got and all(faults.get(t) != "jump" for t in got), "no jumped fix got through"
        assert parser.rejects[BAD_CHECKSUM] >= 1 and parser.rejects[JUMP] >= 1
        return [(e.fix.time, e.fault) for e in sent]

    first = asyncio.run(scenario(3))
    second = asyncio.run(scenario(3))
    assert [f for _, f in first[:60]] == [f for _, f in second[:60]], "same seed, same faults"
