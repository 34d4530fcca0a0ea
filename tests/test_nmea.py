"""NMEA 0183 parser: recorded sentences, round trips and rejects (no I/O here)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.sources.nmea import (
    BAD_CHECKSUM,
    KNOT_MPS,
    NO_DATE,
    NO_FIX,
    UNPARSEABLE,
    NmeaLimits,
    NmeaParser,
)
from edge_agent.sources.nmea_parser import MAX_UNDATED_EPOCHS
from simulators.nmea_encode import (
    SimFix,
    encode_epoch,
    encode_gga,
    encode_gll,
    encode_rmc,
    sentence,
)
from tests.nmea_helpers import T0, feed_all, fixes, gga_only, zda

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


@settings(max_examples=50)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2068, 12, 30)))
def test_date_comes_from_rmc_across_midnight(day: date) -> None:
    before = datetime.combine(day, datetime.max.time(), UTC).replace(microsecond=990_000)
    after = before + timedelta(milliseconds=10)
    lines = encode_epoch(SimFix(before, 1, 2)) + encode_epoch(SimFix(after, 1, 2))
    got = feed_all(NmeaParser(), lines)
    assert [f.time for f in got] == [before, after]
