"""NMEA test helpers shared by tests/test_nmea*.py: a reference time, a whole-stream feed,
a Hypothesis strategy for fixes and builders for the sentences the encoder does not make."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from edge_agent.sources.nmea import NmeaParser
from simulators.nmea_encode import SimFix, encode_gga, sentence

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def feed_all(parser: NmeaParser, lines: list[str]) -> list:
    fixes = []
    for line in lines:
        fixes += parser.feed(line)
    return fixes + parser.flush()


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


def gsa(mode: int, hdop: float = 1.0, talker: str = "GN") -> str:
    return sentence(f"{talker}GSA,A,{mode},01,02,03,04,,,,,,,,,2.0,{hdop:.1f},1.5")


def vtg(course: float, knots: float, talker: str = "GN") -> str:
    return sentence(f"{talker}VTG,{course:.1f},T,,M,{knots:.2f},N,{knots * 1.852:.2f},K,A")


def zda(when: datetime) -> str:
    return sentence(f"GPZDA,{when:%H%M%S}.00,{when:%d,%m,%Y},00,00")


def gga_only(fix: SimFix, talker: str = "GP") -> str:
    return encode_gga(fix, talker)
