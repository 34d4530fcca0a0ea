"""One NMEA 0183 sentence in, checked Python values out: RMC, GGA, GLL, VTG, GSA, ZDA. Pure.

pynmea2 does the splitting and checksum; this module decides what its loosely typed fields
mean for a position fix, so that nothing downstream has to handle pynmea2's raw strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, time
from typing import Any

import pynmea2

KNOT_MPS = 1852 / 3600
KMH_MPS = 1 / 3.6
# Talkers of a GNSS receiver: GPS, multi-constellation, GLONASS, Galileo, BeiDou (both the
# NMEA 4.11 "GB" and the older "BD"), QZSS.
TALKERS = frozenset({"GP", "GN", "GL", "GA", "GB", "BD", "GQ"})
KINDS = frozenset({"rmc", "gga", "gll", "vtg", "gsa", "zda"})

BAD_CHECKSUM = "bad_checksum"
UNPARSEABLE = "unparseable"
NO_FIX = "no_fix"

# NMEA 2.3 mode indicator: autonomous, differential, estimated, float RTK, manual, precise,
# RTK, simulator. N (no fix) is the one that matters.
_FIX_MODES = frozenset("ADEFMPRS")


class SentenceRejected(Exception):
    """A sentence that must not reach a fix; `reason` is the counter it goes to."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Sentence:
    """What one sentence says about its epoch; None where it says nothing."""

    kind: str  # one of KINDS
    talker: str
    time: time | None = None  # UTC time of day; VTG and GSA carry none
    date: date | None = None  # RMC and ZDA only
    fix: bool = True  # False: the receiver itself says it has no fix
    lat: float | None = None
    lon: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    quality: int | None = None  # GGA fix quality
    hdop: float | None = None
    satellites: int | None = None
    altitude_m: float | None = None


def read_sentence(line: str) -> Sentence | None:
    """The sentence's values; None for a sentence a fix does not use (GSV, other talkers,
    a GLL from before NMEA 2.0 without time or status...).

    Raises SentenceRejected for a missing or wrong checksum, a garbled sentence, or a
    "no fix" sentence that carries no time (a receiver still searching).
    """
    line = line.strip()
    # pynmea2 treats '$' and the checksum as optional; a receiver always sends both.
    if not line.startswith("$"):
        raise SentenceRejected(UNPARSEABLE)
    if len(line) < 4 or line[-3] != "*":
        raise SentenceRejected(BAD_CHECKSUM)
    try:
        msg = pynmea2.parse(line, check=True)
    except pynmea2.ChecksumError:
        raise SentenceRejected(BAD_CHECKSUM) from None
    except pynmea2.SentenceTypeError:
        return None  # a well-formed sentence of a type pynmea2 does not know
    except ValueError:
        raise SentenceRejected(UNPARSEABLE) from None
    talker = getattr(msg, "talker", None)
    kind = str(getattr(msg, "sentence_type", "")).lower()
    if talker not in TALKERS or kind not in KINDS:
        return None
    try:
        return _READERS[kind](msg, talker)
    except (ValueError, TypeError, IndexError, AttributeError):
        # pynmea2 raises these lazily, on first access to a garbled field.
        raise SentenceRejected(UNPARSEABLE) from None


def _finite(value: Any, lo: float, hi: float) -> float | None:
    """An optional numeric field: None when absent, garbled or outside the contract's range."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, float | int) or not math.isfinite(value) or not lo <= value <= hi:
        return None
    return float(value)


def _position(msg: Any) -> tuple[float, float]:
    if msg.lat_dir not in ("N", "S") or msg.lon_dir not in ("E", "W"):
        raise ValueError("missing hemisphere")
    lat, lon = msg.latitude, msg.longitude  # ValueError on a garbled ddmm.mmmm
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("coordinates out of range")
    return lat, lon


def _stamp(msg: Any, fix: bool) -> time | None:
    stamp = msg.timestamp  # pynmea2 hands back the raw text when the time is garbled
    if stamp is None and not fix:
        raise SentenceRejected(NO_FIX)  # no time, no fix: nothing to place in an epoch
    if not isinstance(stamp, time):
        raise ValueError("no fix time")
    return stamp


def _speed(knots: Any) -> float | None:
    value = _finite(knots, 0, math.inf)
    speed = None if value is None else value * KNOT_MPS
    return speed if speed is not None and speed <= 400 else None  # the contract's range


def _course(value: Any) -> float | None:
    course = _finite(value, 0, 360)
    return None if course is None else course % 360


def _rmc(msg: Any, talker: str) -> Sentence:
    # Not pynmea2's `is_valid`: that also demands NMEA 4.10's navigational status be S, C or
    # U, but u-blox receivers always send V there ("no status given"), fix or not.
    fix = msg.status == "A" and (getattr(msg, "mode_indicator", "") or "A") in _FIX_MODES
    stamp = _stamp(msg, fix)
    day = msg.datestamp
    if not isinstance(day, date):
        raise ValueError("no date")
    if not fix:
        return Sentence("rmc", talker, stamp, day, fix=False)
    lat, lon = _position(msg)
    return Sentence(
        "rmc",
        talker,
        stamp,
        day,
        lat=lat,
        lon=lon,
        speed_mps=_speed(msg.spd_over_grnd),
        course_deg=_course(msg.true_course),
    )


def _gga(msg: Any, talker: str) -> Sentence:
    quality = msg.gps_qual
    if quality is None:
        quality = 0  # an empty quality field: the receiver has nothing to say
    if not isinstance(quality, int) or not 0 <= quality <= 9:
        raise ValueError("bad fix quality")
    stamp = _stamp(msg, quality > 0)
    if quality == 0:
        return Sentence("gga", talker, stamp, fix=False, quality=0)
    lat, lon = _position(msg)
    sats = _finite(msg.num_sats, 0, 255)
    if sats == 0 and quality <= 5:
        # A satellite fix from no satellites: Garmin and Hemisphere receivers coast on like
        # this after losing the sky. Like gpsd, take no fix from it, but let an RMC of the
        # same epoch that says A stand. Quality 6 (dead reckoning), 7 (manual) and 8
        # (simulator) use no satellites by definition.
        return Sentence("gga", talker, stamp, fix=False, lat=lat, lon=lon, quality=quality)
    return Sentence(
        "gga",
        talker,
        stamp,
        lat=lat,
        lon=lon,
        quality=quality,
        satellites=None if sats is None else int(sats),
        hdop=_finite(msg.horizontal_dil, 0, 100),
        altitude_m=_finite(msg.altitude, -1000, 100_000),  # the contract's range
    )


def _gll(msg: Any, talker: str) -> Sentence | None:
    if not msg.status and not msg.timestamp:
        return None  # NMEA 1.5: a position with no time nor status, no epoch to join
    # Like RMC, status A and (since NMEA 2.3) a mode indicator other than N.
    fix = msg.status == "A" and (getattr(msg, "faa_mode", "") or "A") in _FIX_MODES
    stamp = _stamp(msg, fix)
    if not fix:
        return Sentence("gll", talker, stamp, fix=False)
    lat, lon = _position(msg)
    return Sentence("gll", talker, stamp, lat=lat, lon=lon)


def _vtg(msg: Any, talker: str) -> Sentence:
    if (getattr(msg, "faa_mode", "") or "A") not in _FIX_MODES:
        return Sentence("vtg", talker)  # mode N: its speed and course mean nothing
    speed = _speed(msg.spd_over_grnd_kts)
    if speed is None:
        kmh = _finite(msg.spd_over_grnd_kmph, 0, 400 / KMH_MPS)
        speed = None if kmh is None else kmh * KMH_MPS
    return Sentence("vtg", talker, speed_mps=speed, course_deg=_course(msg.true_track))


def _gsa(msg: Any, talker: str) -> Sentence:
    mode = msg.mode_fix_type
    if mode not in ("1", "2", "3"):
        raise ValueError("bad GSA fix type")
    return Sentence("gsa", talker, fix=mode != "1", hdop=_finite(msg.hdop, 0, 100))


def _zda(msg: Any, talker: str) -> Sentence:
    stamp = _stamp(msg, True)
    day = date(int(msg.year), int(msg.month), int(msg.day))
    return Sentence("zda", talker, stamp, day)


_READERS = {"rmc": _rmc, "gga": _gga, "gll": _gll, "vtg": _vtg, "gsa": _gsa, "zda": _zda}
