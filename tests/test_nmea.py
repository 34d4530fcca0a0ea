"""NMEA 0183: the pure parser (recorded sentences, round trips, rejects) and the TCP source."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import select
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import NmeaTcpSourceConfig
from edge_agent.sources import Backoff, LineFramer, SourceContext
from edge_agent.sources.nmea import (
    BAD_CHECKSUM,
    FUTURE,
    HDOP,
    JUMP,
    KNOT_MPS,
    NO_DATE,
    NO_FIX,
    NO_POSITION,
    UNPARSEABLE,
    WEEK_ROLLOVER,
    WEEK_ROLLOVER_CORRECTED,
    ZERO_POSITION,
    NmeaLimits,
    NmeaParser,
    NmeaTcpSource,
    position_event,
)
from edge_agent.sources.nmea_parser import MAX_UNDATED_EPOCHS
from event_contract import DeviceState, PositionEvent
from simulators.gps import GpsSimConfig, GpsSimulator
from simulators.nmea_encode import (
    SimFix,
    encode_epoch,
    encode_gga,
    encode_gll,
    encode_rmc,
    sentence,
)

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

# A u-blox NEO-M8N (gpsd's neo-m8n.log): a GLL-only epoch, then the next epoch's RMC.
NEO_GLL = "$GNGLL,4404.14066,N,12118.85481,W,171925.00,A,A*66"
NEO_RMC = "$GNRMC,171926.00,A,4404.14063,N,12118.85478,W,0.117,,180315,,,A*76"
# An ST Teseo-LIV3F (gpsd's st-teseo-liv3f.log): differential mode D.
TESEO_GLL = "$GPGLL,4215.07753,N,08811.88592,W,203451.000,A,D*45"

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def feed_all(parser: NmeaParser, lines: list[str]) -> list:
    fixes = []
    for line in lines:
        fixes += parser.feed(line)
    return fixes + parser.flush()


def test_recorded_ublox_epoch_merges_rmc_and_gga() -> None:
    parser = NmeaParser()
    assert parser.feed(UBLOX_RMC) == []  # waits for the rest of the epoch
    assert parser.feed(UBLOX_GGA) == []  # a GSA saying "no fix" may still follow
    (fix,) = parser.flush()
    assert fix.time == datetime(2020, 10, 31, 13, 36, 48, tzinfo=UTC)
    assert fix.lat == pytest.approx(31 + 49.2969 / 60, abs=1e-9)
    assert fix.lon == pytest.approx(117 + 6.9027 / 60, abs=1e-9)
    assert fix.speed_mps == pytest.approx(0.055 * KNOT_MPS)
    assert fix.heading_deg is None  # course field empty when standing still
    assert (fix.fix_quality, fix.satellites, fix.hdop, fix.altitude_m) == (1, 24, 1.03, 88.9)
    assert parser.flush() == []  # the epoch was emitted once, not again
    assert not parser.rejects
    assert (parser.merged, parser.fixes) == (2, 1)


def test_recorded_gga_before_rmc_merges_too() -> None:
    parser = NmeaParser()
    assert parser.feed(GN_GGA) == []
    assert parser.feed(GN_RMC) == []
    (fix,) = parser.flush()
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
    assert parser.rejects == {NO_FIX: 2}  # each sentence of the epoch counts


def test_gga_without_fix_is_rejected_as_no_fix() -> None:
    fix = SimFix(time=T0, lat=10, lon=20, fix_quality=0)
    parser = NmeaParser()
    assert feed_all(parser, [encode_rmc(fix), encode_gga(fix)]) == []
    assert parser.rejects == {NO_FIX: 2}
    # A receiver still searching sends GGA with no time at all.
    assert parser.feed(sentence("GNGGA,,,,,,,,,,,,,,")) == []
    assert parser.rejects == {NO_FIX: 3}


def test_rmc_alone_is_emitted_when_the_next_epoch_starts() -> None:
    first = SimFix(time=T0, lat=1, lon=2)
    second = SimFix(time=T0 + timedelta(seconds=1), lat=1.0001, lon=2)  # 11 m on
    parser = NmeaParser()
    assert parser.feed(encode_rmc(first)) == []
    (fix,) = parser.feed(encode_rmc(second))
    assert (fix.lat, fix.lon, fix.time) == (1, 2, T0)
    assert (fix.satellites, fix.hdop, fix.altitude_m) == (None, None, None)
    assert [f.lat for f in parser.flush()] == [pytest.approx(1.0001)]


def test_recorded_gll_only_epoch_is_dated_from_the_rmc_that_follows() -> None:
    parser = NmeaParser()
    assert parser.feed(NEO_GLL) == []
    assert parser.feed(NEO_RMC) == []  # the GLL epoch waits for a date, which this brings
    (gll, rmc) = parser.flush()
    assert gll.time == datetime(2015, 3, 18, 17, 19, 25, tzinfo=UTC)
    assert gll.lat == pytest.approx(44 + 4.14066 / 60, abs=1e-9)
    assert gll.lon == pytest.approx(-(121 + 18.85481 / 60), abs=1e-9)
    assert (gll.speed_mps, gll.satellites, gll.hdop) == (None, None, None)  # GLL has none
    assert rmc.time == gll.time + timedelta(seconds=1)
    assert (parser.merged, parser.fixes, parser.rejects) == (2, 2, {})


def test_recorded_gll_in_differential_mode_joins_its_epoch() -> None:
    rmc = encode_rmc(SimFix(datetime(2026, 3, 16, 20, 34, 51, tzinfo=UTC), 42.25, -88.19))
    (fix,) = feed_all(NmeaParser(), [rmc, TESEO_GLL])
    assert fix.lat == pytest.approx(42.25) and fix.lon == pytest.approx(-88.19)  # RMC ranks
    (fix,) = feed_all(NmeaParser(), [zda(datetime(2026, 3, 16, 20, 34, 51)), TESEO_GLL])
    assert fix.lat == pytest.approx(42 + 15.07753 / 60, abs=1e-9)


def test_void_gll_is_no_fix_and_a_bad_checksum_is_counted() -> None:
    void = encode_gll(SimFix(T0, 52, 4, valid=False))
    mode_n = sentence(encode_gll(SimFix(T0, 52, 4))[1:-5] + "N")  # status A, mode N
    wrong = NEO_GLL[:-2] + "67"
    parser = NmeaParser()
    assert feed_all(parser, [void, wrong]) == []
    assert parser.rejects == {NO_FIX: 1, BAD_CHECKSUM: 1}
    parser = NmeaParser()
    assert feed_all(parser, [zda(T0), mode_n]) == []
    assert parser.rejects == {NO_FIX: 2}
    # A void GLL stops its epoch even when the RMC says A, as a void RMC does.
    parser = NmeaParser()
    assert feed_all(parser, [*encode_epoch(SimFix(T0, 52, 4)), void]) == []
    assert parser.rejects == {NO_FIX: 3}
    # NMEA 1.5's GLL has no time nor status: no epoch to join, so it is ignored.
    parser = NmeaParser()
    assert feed_all(parser, [sentence("GPGLL,4916.45,N,12311.12,W")]) == []
    assert (parser.ignored, parser.rejects) == (1, {})


def test_undated_epochs_are_held_for_a_date_but_not_forever() -> None:
    ggas = [gga_only(SimFix(T0 + timedelta(seconds=s), 52, 4)) for s in range(20)]
    parser = NmeaParser()
    dated = SimFix(T0 + timedelta(seconds=20), 52, 4)
    got = feed_all(parser, [*ggas, encode_rmc(dated)])
    held = range(20 - MAX_UNDATED_EPOCHS, 20)
    assert [f.time for f in got] == [T0 + timedelta(seconds=s) for s in (*held, 20)]
    assert parser.rejects == {NO_DATE: 20 - MAX_UNDATED_EPOCHS}
    # Held epochs are counted while they wait, and rejected if the stream ends undated.
    parser = NmeaParser()
    for line in ggas[:3]:
        parser.feed(line)
    assert parser.sentences == 3
    assert parser.flush() == [] and parser.rejects == {NO_DATE: 3}


def test_gga_alone_has_no_date_and_is_rejected() -> None:
    parser = NmeaParser()
    assert feed_all(parser, [GN_GGA]) == []
    assert parser.rejects == {NO_DATE: 1}


def test_bad_and_missing_checksums_are_rejected_and_counted() -> None:
    wrong = UBLOX_RMC[:-2] + ("00" if not UBLOX_RMC.endswith("00") else "01")
    missing = UBLOX_RMC[: UBLOX_RMC.index("*")]
    parser = NmeaParser()
    assert feed_all(parser, [wrong, missing, UBLOX_GGA]) == []
    assert parser.rejects == {BAD_CHECKSUM: 2, NO_DATE: 1}


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
    satellites=st.integers(1, 99),  # a fix from no satellites is no fix (see nmea_sentences)
    hdop=st.floats(0, 99).map(lambda h: round(h, 2)),
    altitude_m=st.floats(-999, 99_999).map(lambda a: round(a, 1)),
)


# Limits wide enough for any fix the contract allows: this is about decoding, not filtering.
ANYTHING = NmeaLimits(max_hdop=100)


@given(
    fix=fixes.filter(lambda f: max(abs(f.lat), abs(f.lon)) > 1e-6),  # 0,0 is rejected
    talker=st.sampled_from(["GP", "GN", "GL", "GA", "GB", "BD"]),
    gga_first=st.booleans(),
)
def test_encoded_fix_round_trips(fix: SimFix, talker: str, gga_first: bool) -> None:
    lines = encode_epoch(fix, talker)
    if gga_first:
        lines.reverse()
    parser = NmeaParser(ANYTHING)
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


@given(fix=fixes.filter(lambda f: max(abs(f.lat), abs(f.lon)) > 1e-6), gll_first=st.booleans())
def test_gll_round_trips_with_its_date_from_zda(fix: SimFix, gll_first: bool) -> None:
    fix = dataclasses.replace(fix, time=fix.time.replace(microsecond=0))  # as zda() writes
    lines = [zda(fix.time), encode_gll(fix)]
    if gll_first:
        lines.reverse()
    parser = NmeaParser(ANYTHING)
    (got,) = feed_all(parser, lines)
    assert abs(got.lat - fix.lat) < 1e-6 and abs(got.lon - fix.lon) < 1e-6
    assert got.time == fix.time
    assert not parser.rejects


@given(fix=fixes, data=st.data())
def test_any_single_character_corruption_of_gll_is_rejected(
    fix: SimFix, data: st.DataObject
) -> None:
    line = encode_gll(fix)
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


# --- Epoch merging, filters and their counters ----------------------------------------------

WEEKS_1024 = timedelta(weeks=1024)


def gsa(mode: int, hdop: float = 1.0, talker: str = "GN") -> str:
    return sentence(f"{talker}GSA,A,{mode},01,02,03,04,,,,,,,,,2.0,{hdop:.1f},1.5")


def vtg(course: float, knots: float, talker: str = "GN") -> str:
    return sentence(f"{talker}VTG,{course:.1f},T,,M,{knots:.2f},N,{knots * 1.852:.2f},K,A")


def zda(when: datetime) -> str:
    return sentence(f"GPZDA,{when:%H%M%S}.00,{when:%d,%m,%Y},00,00")


def gga_only(fix: SimFix, talker: str = "GP") -> str:
    return encode_gga(fix, talker)


def test_gsa_no_fix_stops_the_epoch_unless_another_constellation_has_one() -> None:
    fix = SimFix(T0, 52, 4)
    parser = NmeaParser()
    assert feed_all(parser, [*encode_epoch(fix), gsa(1)]) == []
    assert parser.rejects == {NO_FIX: 3}
    # A GN receiver sends one GSA per constellation; BeiDou unused is not "no fix".
    later = SimFix(T0 + timedelta(seconds=1), 52, 4)
    assert len(feed_all(NmeaParser(), [*encode_epoch(later), gsa(3), gsa(1, talker="BD")])) == 1


def test_hdop_above_the_limit_is_rejected_from_gga_or_gsa() -> None:
    noisy = SimFix(T0, 52, 4, hdop=25)
    parser = NmeaParser()
    assert feed_all(parser, encode_epoch(noisy)) == []
    assert parser.rejects == {HDOP: 2}
    # No HDOP in GGA: the GSA's counts.
    rmc_only = encode_rmc(SimFix(T0, 52, 4))
    parser = NmeaParser(NmeaLimits(max_hdop=5))
    assert feed_all(parser, [rmc_only, gsa(3, hdop=6.0)]) == []
    assert parser.rejects == {HDOP: 2}


def test_zero_position_is_rejected() -> None:
    parser = NmeaParser()
    assert feed_all(parser, encode_epoch(SimFix(T0, 0, 0))) == []
    assert parser.rejects == {ZERO_POSITION: 2}


def test_combined_talker_wins_and_vtg_fills_in_speed_and_course() -> None:
    gp = SimFix(T0, 52.0, 4.0)
    gn = SimFix(T0, 52.00001, 4.00001)
    rmc = encode_rmc(gp, "GP").replace(",0.000,0.00,", ",,,")  # no speed, no course
    rmc = sentence(rmc[1 : rmc.index("*")])
    (fix,) = feed_all(NmeaParser(), [rmc, encode_gga(gp, "GP"), encode_gga(gn, "GN"), vtg(90, 10)])
    assert (fix.lat, fix.lon) == (pytest.approx(52.00001), pytest.approx(4.00001))
    assert fix.speed_mps == pytest.approx(10 * KNOT_MPS, abs=1e-3)
    assert fix.heading_deg == pytest.approx(90)


def test_gga_only_epochs_take_their_date_from_zda_and_cross_midnight() -> None:
    before = datetime(2018, 9, 7, 23, 59, 59, tzinfo=UTC)
    after = before + timedelta(seconds=2)
    lines = [zda(before), gga_only(SimFix(before, 42.3, -71.0))]
    lines += [gga_only(SimFix(after, 42.3, -71.0))]
    assert [f.time for f in feed_all(NmeaParser(), lines)] == [before, after]


def test_future_fixes_are_rejected_beyond_the_margin() -> None:
    parser = NmeaParser(now=T0)
    soon, late = T0 + timedelta(minutes=1), T0 + timedelta(minutes=10)
    got = feed_all(parser, [*encode_epoch(SimFix(soon, 1, 2)), *encode_epoch(SimFix(late, 1, 2))])
    assert [f.time for f in got] == [soon]
    assert parser.rejects == {FUTURE: 2}


def test_a_date_no_rollover_explains_is_rejected() -> None:
    when = T0 - WEEKS_1024 - timedelta(days=2 * 365)  # 1024 weeks on is still two years ago
    parser = NmeaParser(now=T0)
    assert feed_all(parser, encode_epoch(SimFix(when, 1, 2))) == []
    assert parser.rejects == {WEEK_ROLLOVER: 2}


@settings(max_examples=50)
@given(
    now=st.datetimes(datetime(2041, 1, 1), datetime(2068, 1, 1), timezones=st.just(UTC)),
    ago=st.integers(0, 360_000),  # centiseconds before now, up to an hour
    periods=st.sampled_from([1, 2]),
)
def test_week_rollover_dates_are_corrected(now: datetime, ago: int, periods: int) -> None:
    true = now.replace(microsecond=0) - timedelta(milliseconds=10 * ago)
    sent = true - periods * WEEKS_1024
    parser = NmeaParser(now=now)
    (fix,) = feed_all(parser, encode_epoch(SimFix(sent, 45, 7)))
    assert fix.time == true
    assert parser.counts()[WEEK_ROLLOVER_CORRECTED] == 1
    assert not parser.rejects


def track(start: SimFix, legs: list[tuple[float, float, int]]) -> list[SimFix]:
    """Fixes along legs of (speed m/s, heading degrees, seconds), flat Earth locally."""
    out, fix = [start], start
    for speed, heading, seconds in legs:
        metres = speed * seconds
        dlat = metres * math.cos(math.radians(heading)) / 111_195
        dlon = (
            metres * math.sin(math.radians(heading)) / (111_195 * math.cos(math.radians(fix.lat)))
        )
        fix = SimFix(fix.time + timedelta(seconds=seconds), fix.lat + dlat, fix.lon + dlon)
        out.append(fix)
    return out


legs = st.lists(
    st.tuples(st.floats(0, 90), st.floats(0, 360), st.integers(1, 5)), min_size=2, max_size=12
)


@settings(max_examples=50)
@given(lat=st.floats(-60, 60), lon=st.floats(1, 170), legs=legs, data=st.data())
def test_jumps_beyond_the_limit_are_rejected_and_normal_motion_is_not(
    lat: float, lon: float, legs: list[tuple[float, float, int]], data: st.DataObject
) -> None:
    path = track(SimFix(T0, lat, lon), legs)
    at = data.draw(st.integers(1, len(path) - 2), label="jump at")
    gap = (path[at].time - path[at - 1].time).total_seconds()
    # 300 m/s worth of displacement: no motion of the path (at most 90 m/s) explains it.
    off = SimFix(path[at].time, path[at].lat + 300 * gap / 111_195, path[at].lon)
    lines = [line for fix in path for line in encode_epoch(fix)]
    assert [f.time for f in feed_all(NmeaParser(), lines)] == [f.time for f in path]
    jumped = [*path[:at], off, *path[at + 1 :]]
    parser = NmeaParser()
    got = feed_all(parser, [line for fix in jumped for line in encode_epoch(fix)])
    assert [f.time for f in got] == [f.time for f in path if f.time != off.time]
    assert parser.rejects == {JUMP: 2}


def test_the_parser_follows_a_receiver_that_really_moved_after_a_few_fixes() -> None:
    there = [SimFix(T0 + timedelta(seconds=s), 10, 20) for s in range(1, 7)]
    parser = NmeaParser(NmeaLimits(jump_reanchor_after=5))
    lines = encode_epoch(SimFix(T0, 50, 5)) + [x for f in there for x in encode_epoch(f)]
    got = feed_all(parser, lines)
    assert [f.time for f in got] == [T0, there[4].time, there[5].time]
    assert parser.rejects == {JUMP: 8}


_bodies = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
_fields = st.lists(st.sampled_from(["", "A", "V", "N", "1", "0", "3", "12.5", "x", "-"]))
lines = st.one_of(
    fixes.map(encode_rmc),
    fixes.map(encode_gga),
    fixes.map(encode_gll),
    st.builds(gsa, st.integers(1, 3), st.floats(0, 99)),
    st.builds(vtg, st.floats(0, 359), st.floats(0, 200)),
    fixes.map(lambda f: zda(f.time)),
    _bodies,  # anything at all
    _bodies.map(sentence),  # anything with a good checksum
    st.tuples(
        st.sampled_from(["GP", "GN", "GL", "GA", "GB", "BD", "II"]),
        st.sampled_from(["RMC", "GGA", "VTG", "GSA", "ZDA", "GLL"]),
        _fields,
    ).map(lambda t: sentence(t[0] + t[1] + "," + ",".join(t[2]))),
)


@settings(max_examples=300)
@given(lines=st.lists(lines, max_size=30), now=st.none() | st.just(T0))
def test_every_line_is_counted_once_and_none_makes_the_parser_raise(
    lines: list[str], now: datetime | None
) -> None:
    parser = NmeaParser(now=now)
    got = feed_all(parser, lines)
    counts = parser.counts()
    assert counts["fixes"] == len(got)
    assert counts["merged"] + counts["ignored"] + parser.rejects.total() == len(lines)
    assert parser.sentences == len(lines)
    for fix in got:  # whatever got through is a valid position event
        position_event(fix, device="gps", seq=1, received_at=T0)


# --- The simulator as a serial receiver, on a pseudo-terminal -----------------------------


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
