"""The serial scanner source against the simulator: over a real pty, and over socket://."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.sources import Backoff, SourceContext
from edge_agent.sources.scanner import Rejection
from edge_agent.sources.scanner_serial import ScannerSerialSource
from event_contract import CodeKind, DeviceState, ReadPoint, ScanEvent, Stage
from simulators.pty_device import PtyDevice
from simulators.scanner import ScannerSimConfig, ScannerSimulator, make_sscc

WAIT_S = 10  # every wait in these tests is bounded by this

SSCC = "00" + make_sscc("0614141", 123456789, extension=1)
BAD_SSCC = SSCC[:-1] + "8"  # the check digit is 7
READ_POINT = ReadPoint(site="wh1", door="door-3")


@dataclass
class Harness:
    """Runs a source in a task; collects its events, status reports and rejections."""

    source: ScannerSerialSource
    events: asyncio.Queue[ScanEvent] = field(default_factory=asyncio.Queue)
    states: list[tuple[DeviceState, str]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_state(self, state: DeviceState, *, after: int = 0, words: str = "") -> str:
        """The detail of the first report of `state` (containing `words`) from index `after`."""

        def found() -> str | None:
            for got, detail in self.states[after:]:
                if got is state and words in detail:
                    return detail
            return None

        async with asyncio.timeout(WAIT_S), self.changed:
            await self.changed.wait_for(lambda: found() is not None)
        detail = found()
        assert detail is not None
        return detail

    async def next_events(self, n: int) -> list[ScanEvent]:
        async with asyncio.timeout(WAIT_S):
            return [await self.events.get() for _ in range(n)]


@contextlib.asynccontextmanager
async def running(port_url: str) -> AsyncIterator[Harness]:
    seq = iter(range(1000))
    harness: Harness

    async def report(device: str, state: DeviceState, detail: str) -> None:
        harness.states.append((state, detail))
        async with harness.changed:
            harness.changed.notify_all()

    ctx = SourceContext(
        site="wh1", gateway="dock-s", next_seq=lambda d: next(seq), report_state=report
    )
    rejections: list[Rejection] = []
    source = ScannerSerialSource(
        device="scanner-s",
        port_url=port_url,
        baudrate=9600,
        read_point=READ_POINT,
        stage=Stage.RECEIVE,
        ctx=ctx,
        backoff=Backoff(0.05, 0.2),
        on_reject=rejections.append,
    )
    harness = Harness(source, rejections=rejections)

    async def pump() -> None:
        async for event in source:
            assert isinstance(event, ScanEvent)
            await harness.events.put(event)

    task = asyncio.create_task(pump())
    try:
        yield harness
    finally:
        task.cancel()
        (outcome,) = await asyncio.gather(task, return_exceptions=True)
    if isinstance(outcome, Exception):  # the source failed, rather than being cancelled
        raise outcome


def run(scenario: Callable[[], Any]) -> None:
    asyncio.run(scenario())


def test_pty_scans_become_events_and_bad_check_digits_are_rejected(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = ScannerSimConfig(rate_hz=0, terminator="\r", pty_link=str(tmp_path / "ttyS9"))
        async with ScannerSimulator(config) as sim, running(sim.pty_path) as h:
            # pyserial flushes the input when it opens a port: scan only once it is open.
            assert "opened" in await h.wait_state(DeviceState.ONLINE)
            assert sim.scan(SSCC)
            assert sim.scan(BAD_SSCC, fault="bad_check_digit")
            assert sim.scan("PKG-42", aim=None)
            assert sim.scan("001061414112", fault="misread")  # SSCC cut short
            assert sim.scan("4006381333931", aim="]E0")
            events = await h.next_events(3)
        assert [(e.code, e.symbology) for e in events] == [
            (SSCC, "gs1-128"),
            ("PKG-42", None),
            ("4006381333931", "ean-13"),
        ]
        for event in events:
            assert event.device == "scanner-s" and event.code_kind is CodeKind.BARCODE
            assert event.read_point == READ_POINT and event.stage is Stage.RECEIVE
        assert h.events.empty()
        counters = h.source.counters()
        assert counters["rejected_bad_check_digit"] == 1
        assert counters["rejected_bad_element_string"] == 1
        assert h.rejections[0].reason == f"SSCC {BAD_SSCC[2:]}: check digit 8 should be 7"
        assert list(h.source.last_rejections) == h.rejections
        assert h.rejections[0].result.code == BAD_SSCC
        assert h.rejections[0].read_point == READ_POINT

    run(scenario)


def test_automatic_scans_over_a_pty_keep_only_the_good_ones(tmp_path: Path) -> None:
    async def scenario() -> None:
        link = tmp_path / "ttyUSB0"
        config = ScannerSimConfig(
            rate_hz=200, plain_every=7, misread_every=5, bad_check_every=3, pty_link=str(link)
        )
        # The source starts first and waits for the port to appear, like an agent booted
        # before the scanner was plugged in.
        async with running(str(link)) as h:
            assert "no such port" in await h.wait_state(DeviceState.OFFLINE)
            async with ScannerSimulator(config) as sim:
                events = await h.next_events(20)
            sent = list(sim.sent)
        codes = [e.code for e in events]
        # pyserial drops what came before the port was open; from then on, nothing is lost,
        # nothing is reordered, and every faulty scan in between was rejected.
        first = next(i for i, s in enumerate(sent) if s.code == codes[0])
        last = next(i for i, s in enumerate(sent) if s.code == codes[-1])
        assert codes == [s.code for s in sent[first : last + 1] if s.fault is None]
        faults = [s.fault for s in sent[first:last]]
        assert "bad_check_digit" in faults and "misread" in faults
        counters = h.source.counters()
        assert counters["rejected_bad_check_digit"] >= faults.count("bad_check_digit")
        assert counters["rejected_bad_element_string"] >= faults.count("misread")
        assert not any(r.result.code in codes for r in h.rejections)

    run(scenario)


def test_source_survives_the_pty_going_away_and_coming_back(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = ScannerSimConfig(rate_hz=0, pty_link=str(tmp_path / "scanner"))
        async with ScannerSimulator(config) as sim, running(sim.pty_path) as h:
            await h.wait_state(DeviceState.ONLINE)
            assert sim.scan(SSCC)
            assert [e.code for e in await h.next_events(1)] == [SSCC]
            mark = len(h.states)
            await sim.hang_up()  # the USB cable pulled
            lost = await h.wait_state(DeviceState.OFFLINE, after=mark)
            assert lost.startswith(f"gateway dock-s: scanner scanner-s on {sim.pty_path}: ")
            assert "port lost" in lost and lost.endswith("reopening")
            # While it is gone, the message says what to check.
            assert "is the scanner plugged in" in await h.wait_state(
                DeviceState.OFFLINE, after=mark, words="no such port"
            )
            mark = len(h.states)
            sim.plug_in()  # a new pty behind the same path
            await h.wait_state(DeviceState.ONLINE, after=mark)
            assert sim.scan("PKG-7", aim=None)
            assert [e.code for e in await h.next_events(1)] == ["PKG-7"]
            counters = h.source.counters()
            assert counters["connects"] == 2 and counters["disconnects"] == 1

    run(scenario)


def test_socket_url_reads_a_network_scanner_and_reconnects() -> None:
    async def scenario() -> None:
        async with ScannerSimulator(ScannerSimConfig(rate_hz=0, terminator="\n")) as sim:
            url = f"socket://127.0.0.1:{sim.port}"
            async with running(url) as h:
                await sim.wait_for_client(timeout_s=WAIT_S)
                await h.wait_state(DeviceState.ONLINE)
                assert sim.scan(SSCC)
                assert sim.scan(BAD_SSCC)
                assert sim.scan("96385074", aim="]E4")
                events = await h.next_events(2)
                assert [(e.code, e.symbology) for e in events] == [
                    (SSCC, "gs1-128"),
                    ("96385074", "ean-8"),
                ]
                assert h.source.counters()["rejected_bad_check_digit"] == 1
                mark = len(h.states)
                assert sim.drop_clients() == 1
                assert "port lost" in await h.wait_state(DeviceState.OFFLINE, after=mark)
                await h.wait_state(DeviceState.ONLINE, after=mark)
                await sim.wait_for_client(timeout_s=WAIT_S)
                assert sim.scan("PKG-9", aim=None)
                assert [e.code for e in await h.next_events(1)] == ["PKG-9"]

    run(scenario)


def test_a_refused_socket_url_is_reported_offline_with_a_hint() -> None:
    async def scenario() -> None:
        sim = ScannerSimulator(ScannerSimConfig(rate_hz=0))
        await sim.start()
        port = sim.port
        await sim.close()  # nothing listens there now
        async with running(f"socket://127.0.0.1:{port}") as h:
            detail = await h.wait_state(DeviceState.OFFLINE)
        assert detail == (
            f"gateway dock-s: scanner scanner-s on socket://127.0.0.1:{port}: "
            "connection refused; is the scanner running?"
        )
        assert h.source.counters()["connect_failures"] >= 1

    run(scenario)


def test_a_scanner_serial_config_builds_a_serial_source() -> None:
    from edge_agent.agent import build_source
    from edge_agent.config import load_gateway_config

    config = load_gateway_config(
        Path(__file__).resolve().parent.parent / "firmware_configs/example-pack-station.toml"
    )

    async def report(device: str, state: DeviceState, detail: str) -> None:
        return None

    ctx = SourceContext(site=config.site, gateway=config.gateway, next_seq=lambda d: 0,
                        report_state=report)  # fmt: skip
    source = build_source(config.sources[0], ctx)
    assert isinstance(source, ScannerSerialSource)
    assert source.device == "scanner-pack-1"


def test_a_slow_consumer_blocks_the_reader_thread_and_loses_nothing() -> None:
    async def scenario() -> None:
        pty = PtyDevice(name="scanner pty")
        pty.open()
        seq = iter(range(1000))
        online = asyncio.Event()
        go = asyncio.Event()  # the consumer takes the next event only when set
        got: asyncio.Queue[str] = asyncio.Queue()

        async def report(device: str, state: DeviceState, detail: str) -> None:
            if state is DeviceState.ONLINE:
                online.set()

        ctx = SourceContext(
            site="wh1", gateway="dock-s", next_seq=lambda d: next(seq), report_state=report
        )
        source = ScannerSerialSource(
            device="scanner-s",
            port_url=pty.path,
            baudrate=9600,
            read_point=READ_POINT,
            stage=None,
            ctx=ctx,
            max_chunks=2,
        )

        async def consume() -> None:
            async with contextlib.aclosing(aiter(source)) as events:
                async for event in events:
                    await got.put(event.code)
                    await go.wait()

        task = asyncio.create_task(consume())
        try:
            async with asyncio.timeout(WAIT_S):
                await online.wait()
                assert pty.send(b"PKG-0\r")
                assert await got.get() == "PKG-0"
                # The consumer is stuck: one chunk per line, far more than two of them.
                for n in range(1, 21):
                    assert pty.send(f"PKG-{n}\r".encode())
                    await asyncio.sleep(0.02)
                assert source.counters()["serial_handover_full"] >= 1
                go.set()
                codes = [await got.get() for _ in range(20)]
                assert codes == [f"PKG-{n}" for n in range(1, 21)]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            pty.close()

    run(scenario)
