"""gpsd's JSON reports in, checked `Fix`es out. Pure: lines in, fixes out, no socket.

A client that sends `?WATCH={"enable":true,"json":true};` gets one JSON object a line:
VERSION on connect, DEVICES and WATCH in answer, then per epoch a TPV (time, position,
velocity) and now and then a SKY (satellites, DOPs). A TPV is held until the next SKY or TPV,
so that the HDOP of its epoch's SKY can be checked against the limit: one report of latency.

The checks are the NMEA parser's (`fix_filter`): mode below 2 is no fix, then the clock,
0,0, HDOP and jumps. Every line fed is counted exactly once: `fixes` (a TPV published),
`sky`, `ignored` (the other classes), `other_device` (another receiver's report when the
parser follows one), `errors` (gpsd's ERROR), or rejected under a reason in `rejects`.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from .fix_filter import WEEK_ROLLOVER_CORRECTED, Fix, FixFilter, FixLimits, Now
from .nmea_parser import NO_POSITION
from .nmea_sentences import NO_FIX, UNPARSEABLE

NO_TIME = "no_time"  # a TPV with a position but no time: gpsd has not seen a date yet

# gpsd's TPV "status" as an NMEA GGA fix quality: 2 DGPS, 3 RTK fixed, 4 RTK float, 5 dead
# reckoning, 6 GNSS + dead reckoning, 7 surveyed, 8 simulated, 9 P(Y) code.
_QUALITY = {2: 2, 3: 4, 4: 5, 5: 6, 6: 6, 7: 7, 8: 8, 9: 3}


def watch_command(device: str | None = None) -> bytes:
    """What a client sends gpsd to start the JSON stream, for one receiver or all."""
    watch: dict[str, object] = {"enable": True, "json": True}
    if device is not None:
        watch["device"] = device
    return f"?WATCH={json.dumps(watch, separators=(',', ':'))};\n".encode()


def _number(report: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    """An optional numeric field: None when absent, not a number, or out of range."""
    value = report.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not lo <= value <= hi:
        return None
    return float(value)


def parse_time(value: object) -> datetime | None:
    """gpsd's ISO 8601 UTC time ("2026-03-16T20:34:52.000Z"); None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


class GpsdParser:
    """Feed gpsd's JSON lines, get `Fix`es. No I/O; one parser per gpsd connection.

    `device` (gpsd's name for a receiver, e.g. "/dev/ttyUSB0") keeps only that receiver's
    reports; `now` enables the clock checks, as for `NmeaParser`.
    """

    def __init__(
        self, limits: FixLimits | None = None, *, now: Now = None, device: str | None = None
    ) -> None:
        self.filter = FixFilter(limits, now=now)
        self.device = device
        self.rejects: Counter[str] = Counter()
        self.fixes = 0
        self.sky = 0
        self.ignored = 0
        self.other_device = 0
        self.errors = 0
        self.last_error: str | None = None  # gpsd's last ERROR message
        self.release: str | None = None  # gpsd's version, from VERSION
        self._hdop: float | None = None
        self._satellites: int | None = None
        self._tpv: Fix | None = None

    @property
    def reports(self) -> int:
        """Lines fed so far, however they were counted."""
        counted = self.fixes + self.sky + self.ignored + self.other_device + self.errors
        return counted + self.rejects.total() + (self._tpv is not None)

    def counts(self) -> dict[str, int]:
        """Everything counted so far, rejects by reason included."""
        return {
            "fixes": self.fixes,
            "sky": self.sky,
            "ignored": self.ignored,
            "other_device": self.other_device,
            "errors": self.errors,
            WEEK_ROLLOVER_CORRECTED: self.filter.rollovers_corrected,
            **self.rejects,
        }

    def feed(self, line: str) -> list[Fix]:
        """One JSON report in; the held TPV's fix out when this report closes its epoch."""
        try:
            report = json.loads(line)
        except (ValueError, RecursionError):
            report = None
        if not isinstance(report, dict) or not isinstance(report.get("class"), str):
            self.rejects[UNPARSEABLE] += 1
            return []
        kind = report["class"]
        following = self.device is not None and kind in ("TPV", "SKY")
        if following and report.get("device", self.device) != self.device:
            self.other_device += 1  # another receiver's report
            return []
        if kind == "TPV":
            return self._on_tpv(report)
        if kind == "SKY":
            self.sky += 1
            self._hdop = _number(report, "hdop", 0, 100)
            used = _number(report, "uSat", 0, 255)
            self._satellites = None if used is None else int(used)
            return self.flush()
        if kind == "ERROR":
            self.errors += 1
            message = report.get("message")
            self.last_error = message[:200] if isinstance(message, str) else "(no message)"
        elif kind == "VERSION":
            self.ignored += 1
            release = report.get("release")
            self.release = release[:40] if isinstance(release, str) else None
        else:
            self.ignored += 1  # DEVICES, WATCH, DEVICE, GST, PPS, TOFF, ATT...
        return []

    def flush(self) -> list[Fix]:
        """Check and emit the held TPV, e.g. when the connection ends."""
        tpv, self._tpv = self._tpv, None
        if tpv is None:
            return []
        fix = Fix(
            time=tpv.time,
            lat=tpv.lat,
            lon=tpv.lon,
            speed_mps=tpv.speed_mps,
            heading_deg=tpv.heading_deg,
            fix_quality=tpv.fix_quality,
            hdop=self._hdop,
            satellites=self._satellites,
            altitude_m=tpv.altitude_m,
        )
        fix_or_reason = self.filter.check(fix)
        if isinstance(fix_or_reason, str):
            self.rejects[fix_or_reason] += 1
            return []
        self.fixes += 1
        return [fix_or_reason]

    def _on_tpv(self, report: dict[str, Any]) -> list[Fix]:
        out = self.flush()
        fix_or_reason = _read_tpv(report)
        if isinstance(fix_or_reason, str):
            self.rejects[fix_or_reason] += 1
        else:
            self._tpv = fix_or_reason
        return out


def _read_tpv(report: dict[str, Any]) -> Fix | str:
    """The TPV's fix, not yet checked, without HDOP; or the reason it has none."""
    mode = report.get("mode")
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 3:
        return UNPARSEABLE
    if mode < 2:
        return NO_FIX  # 0: no report yet, 1: no fix
    if "lat" not in report or "lon" not in report:
        return NO_POSITION
    lat, lon = _number(report, "lat", -90, 90), _number(report, "lon", -180, 180)
    if lat is None or lon is None:
        return UNPARSEABLE
    if "time" not in report:
        return NO_TIME
    when = parse_time(report["time"])
    if when is None:
        return UNPARSEABLE
    status = report.get("status")
    track = _number(report, "track", 0, 360)
    altitude = _number(report, "altMSL", -1000, 100_000)
    return Fix(
        time=when,
        lat=lat,
        lon=lon,
        speed_mps=_number(report, "speed", 0, 400),
        heading_deg=None if track is None else track % 360,
        fix_quality=_QUALITY.get(status, 1) if isinstance(status, int) else 1,
        altitude_m=_number(report, "alt", -1000, 100_000) if altitude is None else altitude,
    )


def decode_reports(
    lines: list[str], *, limits: FixLimits | None = None, now: Now = None, device: str | None = None
) -> tuple[list[Fix], dict[str, int]]:
    """All fixes of a finite run of gpsd reports, and the parser's counts."""
    parser = GpsdParser(limits, now=now, device=device)
    fixes: list[Fix] = []
    for line in lines:
        fixes += parser.feed(line)
    fixes += parser.flush()
    return fixes, parser.counts()
