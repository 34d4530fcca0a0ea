"""gpsd's JSON protocol: the pure parser (properties, rejects) and the source over real TCP."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import GpsdSourceConfig
from edge_agent.sources import Backoff, SourceContext
from edge_agent.sources.fix_filter import FixLimits
from edge_agent.sources.gpsd import GpsdSource
from edge_agent.sources.gpsd_json import NO_TIME, GpsdParser, decode_reports
from edge_agent.sources.nmea import HDOP, JUMP, NO_FIX, UNPARSEABLE, ZERO_POSITION, position_event
from edge_agent.sources.nmea_parser import decode_lines
from event_contract import DeviceState, PositionEvent
from simulators.gps import GpsSimConfig
from simulators.gpsd_sim import GpsdSimulator, sky, tpv
from simulators.nmea_encode import SimFix
from tests.test_nmea_gpsd import DATA, EXPECTED, log_lines

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report)


def epoch(fix: SimFix, **changes: Any) -> list[str]:
    return [dumps({**tpv(fix), **changes}), dumps(sky(fix))]


def test_a_session_as_gpsd_sends_it() -> None:
    fix = SimFix(T0, 52.0, 4.4, speed_mps=8, heading_deg=90, hdop=0.9, satellites=9)
    lines = [
        dumps({"class": "VERSION", "release": "3.25", "proto_major": 3}),
        dumps({"class": "DEVICES", "devices": []}),
        dumps({"class": "WATCH", "enable": True, "json": True}),
        *epoch(fix),
    ]
    (got,), counts = decode_reports(lines)
    assert (got.time, got.lat, got.lon) == (T0, 52.0, 4.4)
    assert (got.speed_mps, got.heading_deg, got.hdop, got.satellites) == (8, 90, 0.9, 9)
    assert counts["fixes"] == 1 and counts["sky"] == 1 and counts["ignored"] == 3


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gpsds_recorded_reports_agree_with_our_nmea_decoder(name: str) -> None:
    """gpsd's own JSON output on the 20 receiver logs (the .chk files), through our parser:
    each fix it yields is the one our NMEA decoder takes from the same log, to 1e-6 degrees."""
    reports = [line for line in log_lines(DATA / f"{name}.log.chk") if line.startswith("{")]
    theirs, counts = decode_reports(reports)
    ours, _ = decode_lines(log_lines(DATA / f"{name}.log"))
    by_time = {fix.time.time(): fix for fix in ours}
    for fix in theirs:  # the harness pins gpsd's dates, so match by time of day
        mine = by_time[fix.time.time()]
        assert abs(fix.lat - mine.lat) <= 1e-6 and abs(fix.lon - mine.lon) <= 1e-6, (name, fix)
    # No fix in either for these two (see test_nmea_gpsd); the HDOP limit bites in haicom's.
    assert (len(theirs) == 0) == (name in ("GPSmap-76S", "holux-gm-210"))
    assert counts["sky"] > 0 and (counts.get(HDOP, 0) > 0) == (name == "haicom-305N")


def test_rejects_are_counted_by_reason() -> None:
    fix = SimFix(T0, 52.0, 4.4)
    far = SimFix(T0 + timedelta(seconds=2), 53.0, 4.4)  # 111 km in 2 s
    lines = [
        "{not json",
        "[1, 2]",
        dumps({"class": "TPV", "mode": 1, "time": "2024-05-01T12:00:00.000Z"}),
        dumps({**tpv(fix), "time": "yesterday"}),
        dumps({k: v for k, v in tpv(fix).items() if k != "time"}),
        *epoch(fix),
        *epoch(SimFix(T0 + timedelta(seconds=1), 0, 0)),
        *epoch(far),
        dumps({**tpv(SimFix(T0 + timedelta(seconds=3), 52.0, 4.4))}),
        dumps({**sky(fix), "hdop": 25.0}),
        dumps({"class": "ERROR", "message": "Unrecognized request"}),
    ]
    parser = GpsdParser()
    got = [f for line in lines for f in parser.feed(line)] + parser.flush()
    assert [f.time for f in got] == [T0]
    assert parser.rejects == {
        UNPARSEABLE: 3,
        NO_FIX: 1,
        NO_TIME: 1,
        ZERO_POSITION: 1,
        JUMP: 1,
        HDOP: 1,
    }
    assert (parser.errors, parser.last_error) == (1, "Unrecognized request")
    assert parser.reports == len(lines)


def test_other_receivers_are_filtered_when_one_is_configured() -> None:
    mine, theirs = SimFix(T0, 52.0, 4.4), SimFix(T0, 10.0, 10.0)
    lines = [*epoch(mine), dumps(tpv(theirs, "/dev/ttyUSB1")), dumps(sky(theirs, "/dev/ttyUSB1"))]
    fixes, counts = decode_reports(lines, device="/dev/ttyACM0")
    assert [(f.lat, f.lon) for f in fixes] == [(52.0, 4.4)]
    assert counts["other_device"] == 2


fixes = st.builds(
    SimFix,
    time=st.datetimes(datetime(2000, 1, 1), datetime(2068, 1, 1), timezones=st.just(UTC)).map(
        lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)
    ),
    lat=st.floats(-90, 90).filter(lambda v: abs(v) > 1e-6),
    lon=st.floats(-180, 180),
    speed_mps=st.floats(0, 300).map(lambda v: round(v, 3)),
    heading_deg=st.floats(0, 359.99).map(lambda v: round(v, 4)),
    hdop=st.floats(0, 99).map(lambda v: round(v, 2)),
    satellites=st.integers(0, 99),
    altitude_m=st.floats(-999, 99_999).map(lambda v: round(v, 1)),
)


@given(fix=fixes)
def test_valid_tpvs_round_trip(fix: SimFix) -> None:
    parser = GpsdParser(FixLimits(max_hdop=100))  # about decoding, not filtering
    (got,) = [f for line in epoch(fix) for f in parser.feed(line)]
    assert got.time == fix.time
    assert abs(got.lat - fix.lat) < 1e-6 and abs(got.lon - fix.lon) < 1e-6
    assert (got.speed_mps, got.heading_deg, got.hdop) == (fix.speed_mps, fix.heading_deg, fix.hdop)
    assert (got.satellites, got.altitude_m) == (fix.satellites, fix.altitude_m)
    position_event(got, device="gps", seq=1, received_at=T0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
reports = st.fixed_dictionaries(
    {"class": st.sampled_from(["TPV", "SKY", "VERSION", "ERROR", "PPS", "TPV "])},
    optional={
        "mode": st.integers(-1, 4) | json_values,
        "lat": st.floats() | json_values,
        "lon": st.floats() | json_values,
        "time": st.sampled_from(["2024-05-01T12:00:00.000Z", "2024-13-01T00:00:00Z", ""]),
        "hdop": st.floats() | json_values,
        "uSat": st.integers(-5, 300) | json_values,
        "speed": st.floats() | json_values,
        "track": st.floats() | json_values,
        "device": st.sampled_from(["/dev/ttyACM0", "/dev/ttyUSB1"]),
        "message": json_values,
    },
)
lines = st.text(max_size=60) | json_values.map(json.dumps) | reports.map(json.dumps)


@settings(max_examples=300)
@given(lines=st.lists(lines, max_size=20), device=st.none() | st.just("/dev/ttyACM0"))
def test_never_raises_and_counts_every_line_once(lines: list[str], device: str | None) -> None:
    parser = GpsdParser(now=T0, device=device)
    got = [f for line in lines for f in parser.feed(line)] + parser.flush()
    assert parser.reports == len(lines)
    assert parser.counts()["fixes"] == len(got)
    for fix in got:  # whatever got through is a valid position event
        position_event(fix, device="gps", seq=1, received_at=T0)


# --- The source against the gpsd simulator, over TCP ----------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.seq = 0
        self.states: list[tuple[DeviceState, str]] = []

    def ctx(self) -> SourceContext:
        return SourceContext(
            site="wh1", gateway="gw-test", next_seq=self.next_seq, report_state=self.report
        )

    def next_seq(self, device: str) -> int:
        self.seq += 1
        return self.seq

    async def report(self, device: str, state: DeviceState, detail: str) -> None:
        self.states.append((state, detail))


async def collect(
    gpsd: GpsdSimulator, count: int, gpsd_device: str | None = None
) -> tuple[GpsdSource, list[Any]]:
    config = GpsdSourceConfig(
        type="gpsd", device="truck-7-gps", host=gpsd.host, port=gpsd.port, gpsd_device=gpsd_device
    )
    source = GpsdSource(config, Recorder().ctx(), backoff=Backoff(0.05, 0.2))
    events: list[Any] = []
    async with asyncio.timeout(15):
        async for event in source:
            events.append(event)
            if len(events) >= count:
                break
    return source, events


def test_source_reads_the_gpsd_simulator_and_matches_its_fixes() -> None:
    async def scenario() -> None:
        config = GpsSimConfig(rate_hz=20, speed_mps=15, hdop=1.2, satellites=11)
        async with GpsdSimulator(config) as gpsd:
            source, events = await collect(gpsd, 10, gpsd_device="/dev/ttyACM0")
            watch = '?WATCH={"enable":true,"json":true,"device":"/dev/ttyACM0"};'
            assert gpsd.server.commands[0] == watch
            sent = {e.fix.time: e.fix for e in gpsd.sent}
        assert all(isinstance(e, PositionEvent) and e.device == "truck-7-gps" for e in events)
        for event in events:
            fix = sent[event.device_time]
            assert abs(event.lat - fix.lat) < 1e-6 and abs(event.lon - fix.lon) < 1e-6
            assert (event.hdop, event.satellites) == (1.2, 11)
            assert event.speed_mps == pytest.approx(15)
        assert source.counters()["gpsd_ignored"] >= 3  # VERSION, DEVICES, WATCH

    asyncio.run(scenario())


def test_corrupt_reports_and_jumps_are_counted_not_published() -> None:
    async def scenario() -> None:
        config = GpsSimConfig(rate_hz=20, corrupt_rate=0.2, jump_rate=0.1, seed=7)
        async with GpsdSimulator(config) as gpsd:
            source, events = await collect(gpsd, 30)
            faults = {e.fix.time: e.fault for e in gpsd.sent}
        assert all(faults[e.device_time] is None for e in events)
        counters = source.counters()
        assert counters["gpsd_unparseable"] >= 1 and counters["gpsd_jump"] >= 1

    asyncio.run(scenario())
