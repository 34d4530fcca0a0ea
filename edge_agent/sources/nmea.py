"""GNSS receivers speaking NMEA 0183: a pure parser, and a TCP source built on it.

A receiver reports one epoch (one fix time) as several sentences. RMC carries the date,
validity, speed and course; GGA carries fix quality, satellites, HDOP and altitude. The
parser merges the two sentences of one epoch into one `Fix`. RMC is required, because only
it carries the date; a GGA-only epoch is counted as a reject.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import pynmea2

from event_contract import Event, PositionEvent, new_event_id

from ..config import NmeaTcpSourceConfig
from . import Backoff, SourceContext, TcpLineSource

KNOT_MPS = 1852 / 3600
# Talkers of a GNSS receiver: GPS, multi-constellation, GLONASS, Galileo, BeiDou, QZSS.
TALKERS = frozenset({"GP", "GN", "GL", "GA", "GB", "BD", "GQ"})

BAD_CHECKSUM = "bad_checksum"
UNPARSEABLE = "unparseable"
NO_FIX = "no_fix"
NO_RMC = "no_rmc"


@dataclass(frozen=True, slots=True)
class Fix:
    """One position fix; `time` is the receiver's UTC fix time."""

    time: datetime
    lat: float
    lon: float
    speed_mps: float | None = None
    heading_deg: float | None = None
    fix_quality: int = 1
    hdop: float | None = None
    satellites: int | None = None
    altitude_m: float | None = None


@dataclass(slots=True)
class _Epoch:
    time: time
    rmc: dict[str, Any] | None = None
    gga: dict[str, Any] | None = None
    dead: bool = False  # the receiver said "no fix" for this epoch
    emitted: bool = False


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


# NMEA 2.3 mode indicator: autonomous, differential, estimated, float RTK, manual, precise,
# RTK, simulator. N (no fix) is the one that matters.
_FIX_MODES = frozenset("ADEFMPRS")


def _rmc_valid(msg: Any) -> bool:
    # Not pynmea2's `is_valid`: that also demands NMEA 4.10's navigational status be S, C or
    # U, but u-blox receivers always send V there ("no status given"), fix or not.
    return msg.status == "A" and (msg.mode_indicator or "A") in _FIX_MODES


def _gga_quality(msg: Any) -> int:
    quality = msg.gps_qual
    if quality is None:
        return 0  # an empty quality field: the receiver has nothing to say
    if not isinstance(quality, int) or not 0 <= quality <= 9:
        raise ValueError("bad fix quality")
    return quality


class NmeaParser:
    """Feed lines, get `Fix`es. No I/O; one parser per receiver connection.

    `rejects` counts sentences (or epochs) that were dropped, by reason: a missing or wrong
    checksum, a sentence that does not parse, an epoch without a fix, or an epoch without RMC.
    Sentences of other types (GSV, GSA, VTG, ...) are counted in `ignored`.
    """

    def __init__(self) -> None:
        self.rejects: Counter[str] = Counter()
        self.ignored = 0
        self.sentences = 0
        self._epoch: _Epoch | None = None

    def feed(self, line: str) -> list[Fix]:
        """One sentence in; zero, one or (when it closes the previous epoch) two fixes out."""
        msg = self._parse(line)
        if msg is None:
            return []
        self.sentences += 1
        try:
            parsed = self._fields(msg)
        except ValueError:  # includes pynmea2's errors for a garbled ddmm.mmmm
            self.rejects[UNPARSEABLE] += 1
            return []
        if parsed is None:
            self.ignored += 1
            return []
        kind, fields = parsed
        out: list[Fix] = []
        if fields["time"] is None:
            self.rejects[NO_FIX] += 1
            return out
        epoch = self._epoch
        if epoch is None or epoch.time != fields["time"]:
            out += self.flush()
            epoch = self._epoch = _Epoch(fields["time"])
        if not fields["valid"]:
            if not epoch.dead and not epoch.emitted:
                self.rejects[NO_FIX] += 1
            epoch.dead = True
        elif getattr(epoch, kind) is None:
            setattr(epoch, kind, fields)  # a second RMC of the same epoch adds nothing
        if epoch.rmc and epoch.gga and not epoch.dead and not epoch.emitted:
            epoch.emitted = True
            out.append(self._merge(epoch.rmc, epoch.gga))
        return out

    def flush(self) -> list[Fix]:
        """Close the pending epoch, e.g. at end of stream: an RMC without its GGA still counts."""
        epoch, self._epoch = self._epoch, None
        if epoch is None or epoch.dead or epoch.emitted:
            return []
        if epoch.rmc is None:
            self.rejects[NO_RMC] += 1
            return []
        return [self._merge(epoch.rmc, epoch.gga)]

    def _parse(self, line: str) -> Any:
        line = line.strip()
        # pynmea2 treats '$' and the checksum as optional; a receiver always sends both.
        if not line.startswith("$"):
            self.rejects[UNPARSEABLE] += 1
            return None
        if len(line) < 4 or line[-3] != "*":
            self.rejects[BAD_CHECKSUM] += 1
            return None
        try:
            return pynmea2.parse(line, check=True)
        except pynmea2.ChecksumError:
            self.rejects[BAD_CHECKSUM] += 1
        except pynmea2.SentenceTypeError:
            self.ignored += 1  # a well-formed sentence of a type pynmea2 does not know
        except ValueError:
            self.rejects[UNPARSEABLE] += 1
        return None

    def _fields(self, msg: Any) -> tuple[str, dict[str, Any]] | None:
        """The fields of an RMC or GGA as checked Python values; None for other sentences."""
        if getattr(msg, "talker", None) not in TALKERS:
            return None
        kind = msg.sentence_type.lower()
        if kind not in ("rmc", "gga"):
            return None
        valid = _rmc_valid(msg) if kind == "rmc" else _gga_quality(msg) > 0
        stamp = msg.timestamp  # pynmea2 hands back the raw text when the time is garbled
        if stamp is None and not valid:
            return kind, {"time": None, "valid": False}  # a receiver still searching
        if not isinstance(stamp, time):
            raise ValueError("no fix time")
        if kind == "rmc":
            day = msg.datestamp
            if not isinstance(day, date):
                raise ValueError("no date")
            out: dict[str, Any] = {"time": stamp, "valid": valid, "date": day}
            if valid:
                out["lat"], out["lon"] = _position(msg)
                knots = _finite(msg.spd_over_grnd, 0, math.inf)
                speed = None if knots is None else knots * KNOT_MPS
                out["speed_mps"] = speed if speed is not None and speed <= 400 else None
                heading = _finite(msg.true_course, 0, 360)
                out["heading_deg"] = None if heading is None else heading % 360
            return kind, out
        out = {"time": stamp, "valid": valid, "fix_quality": _gga_quality(msg)}
        if valid:
            out["lat"], out["lon"] = _position(msg)
            sats = _finite(msg.num_sats, 0, 255)
            out["satellites"] = None if sats is None else int(sats)
            out["hdop"] = _finite(msg.horizontal_dil, 0, 100)
            out["altitude_m"] = _finite(msg.altitude, -1000, 100_000)  # the contract's range
        return kind, out

    @staticmethod
    def _merge(rmc: dict[str, Any], gga: dict[str, Any] | None) -> Fix:
        gga = gga or {}
        return Fix(
            time=datetime.combine(rmc["date"], rmc["time"]),
            lat=rmc["lat"],
            lon=rmc["lon"],
            speed_mps=rmc["speed_mps"],
            heading_deg=rmc["heading_deg"],
            fix_quality=gga.get("fix_quality", 1),
            hdop=gga.get("hdop"),
            satellites=gga.get("satellites"),
            altitude_m=gga.get("altitude_m"),
        )


def position_event(fix: Fix, *, device: str, seq: int, received_at: datetime) -> PositionEvent:
    return PositionEvent(
        event_id=new_event_id(),
        device=device,
        seq=seq,
        device_time=fix.time,
        received_at=received_at,
        lat=fix.lat,
        lon=fix.lon,
        speed_mps=fix.speed_mps,
        heading_deg=fix.heading_deg,
        fix_quality=fix.fix_quality,
        hdop=fix.hdop,
        satellites=fix.satellites,
        altitude_m=fix.altitude_m,
    )


class NmeaTcpSource(TcpLineSource):
    """`async for event in NmeaTcpSource(config, ctx)`: PositionEvents from a receiver on TCP."""

    what = "GPS"
    hint = "GPS receiver (or simulator)"

    def __init__(
        self,
        config: NmeaTcpSourceConfig,
        ctx: SourceContext,
        *,
        backoff: Backoff | None = None,
        idle_timeout_s: float | None = 10.0,
    ) -> None:
        # A receiver sends at least once a second, so silence means a dead (half-open) link.
        super().__init__(
            device=config.device,
            host=config.host,
            port=config.port,
            ctx=ctx,
            backoff=backoff,
            idle_timeout_s=idle_timeout_s,
            max_line=256,  # NMEA allows 82 characters; leave room for proprietary talkers
        )
        self.parser = NmeaParser()

    def counters(self) -> dict[str, float]:
        rejects = {f"nmea_{reason}": n for reason, n in self.parser.rejects.items()}
        return {**super().counters(), **rejects, "nmea_ignored": self.parser.ignored}

    def _events(self, fixes: list[Fix], received_at: datetime) -> list[Event]:
        return [
            position_event(
                fix, device=self.device, seq=self.ctx.next_seq(self.device), received_at=received_at
            )
            for fix in fixes
        ]

    def _on_line(self, line: str, received_at: datetime) -> list[Event]:
        return self._events(self.parser.feed(line), received_at)

    def _on_disconnect(self, received_at: datetime) -> list[Event]:
        return self._events(self.parser.flush(), received_at)
