"""`tracklane simulate reader|scanner|gps|gpsd`, run as a user runs them, stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from edge_agent.config import RfidLlrpSourceConfig
from edge_agent.sources import SourceContext
from edge_agent.sources.rfid_llrp import RfidLlrpSource
from event_contract import ScanEvent
from tracklane.embedded.broker import free_port


class Running:
    """A `tracklane simulate ...` process whose stdout a thread collects line by line."""

    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracklane", "simulate", *args],
            env=env | {"PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """The first stdout line (so far or to come) matching `pattern`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line like {pattern!r} in {self.lines}")

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C; the exit code, all of stdout and stderr."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=20)
        self._reader.join(5)
        assert self.proc.stderr is not None
        return code, "".join(self.lines), self.proc.stderr.read()


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def _start(started: list[Running], *args: str) -> Running:
    run = Running(*args)
    started.append(run)
    return run


def _assert_clean_stop(run: Running) -> str:
    code, out, err = run.interrupt()
    assert code == 0, err
    assert "Traceback" not in err and "stopped." in out
    return out


def test_simulate_reader_serves_llrp_that_the_rfid_source_reads(running: list[Running]) -> None:
    port = free_port()
    run = _start(
        running, "reader", "--port", str(port), "--doors", "2", "--tags-per-minute", "300",
        "--report-interval", "0.1", "--seed", "3",
    )  # fmt: skip
    run.wait_for(rf"LLRP reader listening on 127\.0\.0\.1:{port}")
    config = RfidLlrpSourceConfig.model_validate(
        {
            "type": "rfid_llrp",
            "device": "sim-reader",
            "host": "127.0.0.1",
            "port": port,
            "antennas": [{"antenna": n, "read_point": {"door": f"door-{n}"}} for n in (1, 2)],
            "smoothing": {"window_s": 0.5, "rssi_floor_dbm": -72},
        }
    )

    async def first_scans() -> list[ScanEvent]:
        seqs = itertools.count(1)

        async def report(*_args: object) -> None:
            pass

        ctx = SourceContext(
            site="wh1", gateway="gw", next_seq=lambda _d: next(seqs), report_state=report
        )
        events: list[ScanEvent] = []
        source = RfidLlrpSource(config, ctx, poll_interval_s=0.05)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(8):
                async for event in source:
                    assert isinstance(event, ScanEvent)
                    events.append(event)
                    if len(events) == 3:
                        break
        return events

    events = asyncio.run(first_scans())
    assert len(events) == 3, events
    # The simulator prints each pass's door and EPC: the source saw the same at the same door.
    printed = run.wait_for(rf"door-\d\s+{events[0].code}")
    assert printed.group(0).startswith(events[0].read_point.door + " ")
    _assert_clean_stop(run)


def _read_line(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, "the simulator closed the connection"
            data += chunk
    return data.split(b"\n")[0]


def test_simulate_scanner_serves_tcp_and_a_pty(running: list[Running]) -> None:
    run = _start(running, "scanner", "--port", "0", "--pty", "--rate", "20")
    port = int(run.wait_for(r"scanner listening on 127\.0\.0\.1:(\d+)").group(1))
    pty_path = run.wait_for(r"serial port: (\S+)").group(1)
    with contextlib.closing(socket.create_connection(("127.0.0.1", port), timeout=10)) as sock:
        stream = sock.makefile("rb")
        lines = [stream.readline() for _ in range(6)]  # one in 5 is a plain code
        assert any(re.fullmatch(rb"\]C100\d{18}\r\n", line) for line in lines), lines  # SSCCs
        fd = os.open(pty_path, os.O_RDONLY | os.O_NOCTTY)
        try:
            assert select.select([fd], [], [], 10)[0] and os.read(fd, 1024)
        finally:
            os.close(fd)
        _assert_clean_stop(run)  # with a client still connected


def test_simulate_gps_serves_nmea(running: list[Running]) -> None:
    run = _start(running, "gps", "--port", "0", "--pty", "--rate", "5")
    port = int(run.wait_for(r"GPS listening on 127\.0\.0\.1:(\d+)").group(1))
    assert os.path.exists(run.wait_for(r"serial port: (\S+)").group(1))
    assert re.match(rb"^\$GP(RMC|GGA),", _read_line(port))
    _assert_clean_stop(run)


def test_simulate_gpsd_reports_after_watch(running: list[Running]) -> None:
    run = _start(running, "gpsd", "--port", "0", "--rate", "5")
    port = int(run.wait_for(r"gpsd listening on 127\.0\.0\.1:(\d+)").group(1))
    with contextlib.closing(socket.create_connection(("127.0.0.1", port), timeout=10)) as sock:
        stream = sock.makefile("rb")
        assert json.loads(stream.readline())["class"] == "VERSION"  # and nothing until asked
        sock.sendall(b'?WATCH={"enable":true,"json":true};\n')
        reports = [json.loads(stream.readline()) for _ in range(6)]
        assert [r["class"] for r in reports[:2]] == ["DEVICES", "WATCH"]
        tpv = next(r for r in reports if r["class"] == "TPV")
        # On the demo route, about 52.00N 4.40E, in gpsd's 3D-fix form.
        assert tpv["mode"] == 3 and 51.99 < tpv["lat"] < 52.01 and 4.39 < tpv["lon"] < 4.42
        _assert_clean_stop(run)  # with a watching client still connected


def test_a_busy_port_is_a_clear_error(running: list[Running]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = _start(running, "gps", "--port", str(port))
        assert run.proc.wait(timeout=20) == 2
        err = run.proc.stderr.read() if run.proc.stderr else ""
    assert "cannot listen" in err and "Traceback" not in err
