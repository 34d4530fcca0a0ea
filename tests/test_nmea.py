"""NMEA 0183: the pure parser (recorded sentences, round trips, rejects) and the TCP source."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import NmeaTcpSourceConfig
from edge_agent.sources import Backoff, SourceContext
from edge_agent.sources.nmea import (
    BAD_CHECKSUM,
    KNOT_MPS,
    NO_FIX,
    NO_RMC,
    UNPARSEABLE,
    NmeaParser,
    NmeaTcpSource,
)
from event_contract import DeviceState, PositionEvent
from simulators.gps import GpsSimConfig, GpsSimulator
from simulators.nmea_encode import SimFix, encode_epoch, encode_gga, encode_rmc, sentence

# Recorded from receivers (as published in their users' code and docs), one epoch each.
# A multi-GNSS receiver in NMEA 4.10 layout: RMC ends with nav status V, course empty.
UBLOX_RMC = "$GNRMC,133648.00,A,3149.2969,N,11706.9027,E,0.055,,311020,,,A,V*18"
UBLOX_GGA = "$GNGGA,133648.00,3149.2969,N,11706.9027,E,1,24,1.03,88.9,M,,M,,*6C"
# The same receiver family before its first fix: void RMC, mode N.
UBLOX_VOID_RMC = "$GNRMC,023240.00,V,,,,,,,221023,,,N,V*1E"
# NMEA 2.3 layout, GGA sent before RMC.
GN_GGA = "$GNGGA,064607.000,4546.2282,N,00311.6590,E,1,05,2.6,412.0,M,0.0,M,,*77"
GN_RMC = "$GNRMC,064607.000,A,4546.2282,N,00311.6590,E,0.76,0.00,230619,,,A*7D"
GPS_GSV = "$GPGSV,2,2,07,12,32,18,25,26,7,220,,23,1,340,*76"

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def feed_all(parser: NmeaParser, lines: list[str]) -> list:
    fixes = []
    for line in lines:
        fixes += parser.feed(line)
    return fixes + parser.flush()


def test_recorded_ublox_epoch_merges_rmc_and_gga() -> None:
    parser = NmeaParser()
    assert parser.feed(UBLOX_RMC) == []  # waits for the GGA of the same epoch
    (fix,) = parser.feed(UBLOX_GGA)
    assert fix.time == datetime(2020, 10, 31, 13, 36, 48, tzinfo=UTC)
    assert fix.lat == pytest.approx(31 + 49.2969 / 60, abs=1e-9)
    assert fix.lon == pytest.approx(117 + 6.9027 / 60, abs=1e-9)
    assert fix.speed_mps == pytest.approx(0.055 * KNOT_MPS)
    assert fix.heading_deg is None  # course field empty when standing still
    assert (fix.fix_quality, fix.satellites, fix.hdop, fix.altitude_m) == (1, 24, 1.03, 88.9)
    assert parser.flush() == []  # the epoch was emitted once, not again
    assert not parser.rejects


def test_recorded_gga_before_rmc_merges_too() -> None:
    parser = NmeaParser()
    assert parser.feed(GN_GGA) == []
    (fix,) = parser.feed(GN_RMC)
    assert fix.time == datetime(2019, 6, 23, 6, 46, 7, tzinfo=UTC)
    assert fix.lat == pytest.approx(45 + 46.2282 / 60)
    assert fix.lon == pytest.approx(3 + 11.6590 / 60)
    assert (fix.satellites, fix.hdop, fix.altitude_m, fix.heading_deg) == (5, 2.6, 412.0, 0.0)


def test_void_rmc_is_rejected_as_no_fix() -> None:
    parser = NmeaParser()
    assert feed_all(parser, [UBLOX_VOID_RMC]) == []
    assert parser.rejects == {NO_FIX: 1}


def test_void_rmc_kills_its_epoch_even_with_a_valid_gga() -> None:
    fix = SimFix(time=T0, lat=10, lon=20)
    void = encode_rmc(SimFix(time=T0, lat=10, lon=20, valid=False))
    parser = NmeaParser()
    assert feed_all(parser, [void, encode_gga(fix)]) == []
    assert parser.rejects == {NO_FIX: 1}


def test_gga_without_fix_is_rejected_as_no_fix() -> None:
    fix = SimFix(time=T0, lat=10, lon=20, fix_quality=0)
    parser = NmeaParser()
    assert feed_all(parser, [encode_rmc(fix), encode_gga(fix)]) == []
    assert parser.rejects == {NO_FIX: 1}
    # A receiver still searching sends GGA with no time at all.
    assert parser.feed(sentence("GNGGA,,,,,,,,,,,,,,")) == []
    assert parser.rejects == {NO_FIX: 2}


def test_rmc_alone_is_emitted_when_the_next_epoch_starts() -> None:
    first = SimFix(time=T0, lat=1, lon=2)
    second = SimFix(time=T0 + timedelta(seconds=1), lat=3, lon=4)
    parser = NmeaParser()
    assert parser.feed(encode_rmc(first)) == []
    (fix,) = parser.feed(encode_rmc(second))
    assert (fix.lat, fix.lon, fix.time) == (1, 2, T0)
    assert (fix.satellites, fix.hdop, fix.altitude_m) == (None, None, None)
    assert [f.lat for f in parser.flush()] == [3]


def test_gga_alone_has_no_date_and_is_rejected() -> None:
    parser = NmeaParser()
    assert feed_all(parser, [GN_GGA]) == []
    assert parser.rejects == {NO_RMC: 1}


def test_bad_and_missing_checksums_are_rejected_and_counted() -> None:
    wrong = UBLOX_RMC[:-2] + ("00" if not UBLOX_RMC.endswith("00") else "01")
    missing = UBLOX_RMC[: UBLOX_RMC.index("*")]
    parser = NmeaParser()
    assert feed_all(parser, [wrong, missing, UBLOX_GGA]) == []
    assert parser.rejects == {BAD_CHECKSUM: 2, NO_RMC: 1}


def test_garbage_is_unparseable_and_other_sentences_are_ignored() -> None:
    parser = NmeaParser()
    lines = [
        "hello",
        sentence("GPRMC,12x519,A,4807.038,N,01131.000,E,022.4,084.4,230394,,"),  # bad time
        sentence("GPRMC,123519,A,4807.038,Q,01131.000,E,022.4,084.4,230394,,"),  # bad N/S
        sentence("GPGGA,123519,48x7.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
        GPS_GSV,
        sentence("IIMWV,225.0,R,3.5,N,A"),  # a wind sensor sharing the line
        sentence("GPXYZ,1,2,3"),  # a sentence type nobody knows
    ]
    assert feed_all(parser, lines) == []
    assert parser.rejects == {UNPARSEABLE: 4}
    assert parser.ignored == 3


def test_absurd_optional_fields_are_dropped_not_passed_on() -> None:
    # A speed of 1000 knots or an HDOP of 500 would fail the contract; the fix itself is fine.
    rmc = sentence("GPRMC,120000.00,A,5200.000000,N,00400.000000,E,1000.0,361.0,010524,,,A")
    gga = sentence("GPGGA,120000.00,5200.000000,N,00400.000000,E,1,300,500.0,nan,M,0,M,,")
    (fix,) = feed_all(NmeaParser(), [rmc, gga])
    assert (fix.speed_mps, fix.heading_deg, fix.satellites, fix.hdop, fix.altitude_m) == (
        None,
        None,
        None,
        None,
        None,
    )


fixes = st.builds(
    SimFix,
    time=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2068, 12, 31), timezones=st.just(UTC)
    ).map(lambda t: t.replace(microsecond=t.microsecond // 10_000 * 10_000)),
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    speed_mps=st.floats(0, 300),
    heading_deg=st.floats(0, 359.99),
    fix_quality=st.integers(1, 8),
    satellites=st.integers(0, 99),
    hdop=st.floats(0, 99).map(lambda h: round(h, 2)),
    altitude_m=st.floats(-999, 99_999).map(lambda a: round(a, 1)),
)


@given(fix=fixes, talker=st.sampled_from(["GP", "GN"]), gga_first=st.booleans())
def test_encoded_fix_round_trips(fix: SimFix, talker: str, gga_first: bool) -> None:
    lines = encode_epoch(fix, talker)
    if gga_first:
        lines.reverse()
    parser = NmeaParser()
    (got,) = feed_all(parser, lines)
    assert abs(got.lat - fix.lat) < 1e-6
    assert abs(got.lon - fix.lon) < 1e-6
    assert got.time == fix.time
    assert got.speed_mps == pytest.approx(fix.speed_mps, abs=1e-3)
    assert (got.heading_deg - fix.heading_deg + 180) % 360 - 180 == pytest.approx(0, abs=0.01)
    assert (got.fix_quality, got.satellites) == (fix.fix_quality, fix.satellites)
    assert got.hdop == pytest.approx(fix.hdop)
    assert got.altitude_m == pytest.approx(fix.altitude_m)
    assert not parser.rejects


@given(fix=fixes, data=st.data())
def test_any_single_character_corruption_is_rejected(fix: SimFix, data: st.DataObject) -> None:
    line = encode_rmc(fix)
    at = data.draw(st.integers(1, line.index("*") - 1), label="position")
    new = data.draw(st.characters(min_codepoint=32, max_codepoint=126), label="character")
    if new == line[at]:
        return
    parser = NmeaParser()
    assert feed_all(parser, [line[:at] + new + line[at + 1 :]]) == []
    assert parser.rejects.total() == 1
    assert set(parser.rejects) <= {BAD_CHECKSUM, UNPARSEABLE}


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


@settings(max_examples=50)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2068, 12, 30)))
def test_date_comes_from_rmc_across_midnight(day: date) -> None:
    before = datetime.combine(day, datetime.max.time(), UTC).replace(microsecond=990_000)
    after = before + timedelta(milliseconds=10)
    lines = encode_epoch(SimFix(before, 1, 2)) + encode_epoch(SimFix(after, 1, 2))
    got = feed_all(NmeaParser(), lines)
    assert [f.time for f in got] == [before, after]
