"""NMEA 0183 parser: epoch merging, the filters (HDOP, jumps, dates) and their counters."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.sources.nmea import (
    FUTURE,
    HDOP,
    JUMP,
    KNOT_MPS,
    NO_FIX,
    WEEK_ROLLOVER,
    WEEK_ROLLOVER_CORRECTED,
    ZERO_POSITION,
    NmeaLimits,
    NmeaParser,
    position_event,
)
from simulators.nmea_encode import (
    SimFix,
    encode_epoch,
    encode_gga,
    encode_gll,
    encode_rmc,
    sentence,
)
from tests.nmea_helpers import T0, feed_all, fixes, gga_only, gsa, vtg, zda

WEEKS_1024 = timedelta(weeks=1024)


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
