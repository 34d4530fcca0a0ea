"""Write NMEA 0183 RMC, GGA and GLL sentences, as a GNSS receiver would. Pure: no I/O, no clock.

Coordinates are written with six decimals of minutes (about 2 mm), finer than real
receivers, so that encode-then-parse round trips hold to 1e-6 degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce

KNOT_MPS = 1852 / 3600


@dataclass(frozen=True, slots=True)
class SimFix:
    time: datetime  # aware; written in UTC with centisecond resolution
    lat: float
    lon: float
    speed_mps: float = 0.0
    heading_deg: float = 0.0
    fix_quality: int = 1  # GGA quality; 0 means no fix
    satellites: int = 9
    hdop: float = 0.9
    altitude_m: float = 5.0
    valid: bool = True  # RMC status A; False writes a void (V) RMC without a position


def checksum(body: str) -> str:
    """The two hex digits after '*': XOR of every character between '$' and '*'."""
    return f"{reduce(lambda acc, ch: acc ^ ord(ch), body, 0):02X}"


def sentence(body: str) -> str:
    """`$body*HH`, without a line terminator."""
    return f"${body}*{checksum(body)}"


def _angle(value: float, degree_digits: int, hemispheres: str) -> tuple[str, str]:
    # Round once, in integer micro-minutes, so 59.9999999' carries into the degrees instead
    # of printing as 60.000000'.
    micro = round(abs(value) * 60 * 1_000_000)
    degrees, micro_minutes = divmod(micro, 60 * 1_000_000)
    minutes = f"{micro_minutes // 1_000_000:02d}.{micro_minutes % 1_000_000:06d}"
    return f"{degrees:0{degree_digits}d}{minutes}", hemispheres[value < 0]


def format_lat(lat: float) -> tuple[str, str]:
    return _angle(lat, 2, "NS")


def format_lon(lon: float) -> tuple[str, str]:
    return _angle(lon, 3, "EW")


def _hhmmss(t: datetime) -> str:
    t = t.astimezone(UTC)
    return f"{t:%H%M%S}.{t.microsecond // 10_000:02d}"


def encode_rmc(fix: SimFix, talker: str = "GP") -> str:
    date = f"{fix.time.astimezone(UTC):%d%m%y}"
    if not fix.valid:
        return sentence(f"{talker}RMC,{_hhmmss(fix.time)},V,,,,,,,{date},,,N")
    lat, ns = format_lat(fix.lat)
    lon, ew = format_lon(fix.lon)
    knots = fix.speed_mps / KNOT_MPS
    course = math.fmod(fix.heading_deg, 360.0) % 360.0
    return sentence(
        f"{talker}RMC,{_hhmmss(fix.time)},A,{lat},{ns},{lon},{ew},"
        f"{knots:.3f},{course:.2f},{date},,,A"
    )


def encode_gga(fix: SimFix, talker: str = "GP") -> str:
    if fix.fix_quality == 0 or not fix.valid:
        return sentence(f"{talker}GGA,{_hhmmss(fix.time)},,,,,0,00,99.99,,,,,,")
    lat, ns = format_lat(fix.lat)
    lon, ew = format_lon(fix.lon)
    return sentence(
        f"{talker}GGA,{_hhmmss(fix.time)},{lat},{ns},{lon},{ew},{fix.fix_quality},"
        f"{fix.satellites:02d},{fix.hdop:.2f},{fix.altitude_m:.1f},M,47.0,M,,"
    )


def encode_gll(fix: SimFix, talker: str = "GP") -> str:
    """GLL, NMEA 2.3 layout: position, time, status and mode indicator."""
    if fix.fix_quality == 0 or not fix.valid:
        return sentence(f"{talker}GLL,,,,,{_hhmmss(fix.time)},V,N")
    lat, ns = format_lat(fix.lat)
    lon, ew = format_lon(fix.lon)
    return sentence(f"{talker}GLL,{lat},{ns},{lon},{ew},{_hhmmss(fix.time)},A,A")


def encode_epoch(fix: SimFix, talker: str = "GP") -> list[str]:
    """The sentences of one epoch, in the order a u-blox receiver sends them."""
    return [encode_rmc(fix, talker), encode_gga(fix, talker)]
