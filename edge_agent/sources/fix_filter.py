"""The checks every position fix passes, whatever protocol it came in: pure, no I/O.

Both the NMEA 0183 parser and the gpsd JSON parser build a `Fix` and hand it to one
`FixFilter` per receiver, which rejects it (returning the reason, a counter name) or returns
it, its date corrected for a GPS week rollover if need be.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

ZERO_POSITION = "zero_position"  # 0,0: what some receivers send before their first fix
JUMP = "jump"  # implied speed from the last accepted fix above the limit
HDOP = "hdop"
FUTURE = "future"
WEEK_ROLLOVER = "week_rollover"  # far in the past, and no multiple of 1024 weeks explains it
WEEK_ROLLOVER_CORRECTED = "week_rollover_corrected"  # not a reject: the fix was kept

GPS_WEEK_ROLLOVER = timedelta(weeks=1024)
EARTH_RADIUS_M = 6_371_008.8

Now = Callable[[], datetime] | datetime | None


@dataclass(frozen=True, slots=True)
class FixLimits:
    """What a receiver's parser accepts; the defaults suit a road vehicle."""

    max_speed_mps: float = 100.0  # implied by two consecutive accepted fixes
    max_hdop: float = 20.0
    future_margin: timedelta = timedelta(minutes=5)  # allowed lead of a fix over `now`
    # A corrected date must land within this much before `now`; a receiver's clock is
    # exact when it has a fix, so a year is generous and still rules out old recordings.
    rollover_tolerance: timedelta = timedelta(days=366)
    # After this many rejected jumps that agree with each other, the receiver has really
    # moved (or the last accepted fix was the bad one): accept and start again from there.
    jump_reanchor_after: int = 5


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


def distance_m(a: Fix, b: Fix) -> float:
    """Great-circle distance between two fixes (haversine, spherical Earth)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class FixFilter:
    """`filter.check(fix)`: the fix to publish, or the reason (a counter name) it is rejected.

    `now` (an aware datetime or a callable returning one) enables the future-timestamp and
    week-rollover checks; without it (replaying an old log, say) they are skipped. The jump
    check remembers the last accepted fix, so one filter serves one receiver.
    """

    def __init__(self, limits: FixLimits | None = None, *, now: Now = None) -> None:
        self.limits = limits or FixLimits()
        self._now = now
        self.rollovers_corrected = 0
        self._last: Fix | None = None
        self._jump: Fix | None = None  # the last fix rejected as a jump
        self._jump_streak = 0

    def check(self, fix: Fix) -> Fix | str:
        """In order: the clock (future, week rollover), 0,0, HDOP, then the jump."""
        if fix.time.tzinfo is None:
            fix = replace(fix, time=fix.time.replace(tzinfo=UTC))  # fix times are UTC
        when = self.check_time(fix.time)
        if isinstance(when, str):
            return when
        if fix.lat == 0 and fix.lon == 0:
            return ZERO_POSITION
        if fix.hdop is not None and fix.hdop > self.limits.max_hdop:
            return HDOP
        checked = fix if when == fix.time else replace(fix, time=when)
        if self._is_jump(checked):
            return JUMP
        if checked is not fix:
            self.rollovers_corrected += 1
        return checked

    def check_time(self, when: datetime) -> datetime | str:
        """`when`, corrected for a GPS week rollover if need be, or the reason to reject it."""
        now = self._now() if callable(self._now) else self._now
        if now is None:
            return when
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        limits = self.limits
        if when > now + limits.future_margin:
            return FUTURE
        if when >= now - (GPS_WEEK_ROLLOVER - limits.rollover_tolerance):
            return when
        # Old receivers count weeks in 10 bits: after week 1023 their date falls back by
        # 1024 weeks (19.6 years), or 2048 across two rollovers.
        for periods in (1, 2):
            corrected = when + periods * GPS_WEEK_ROLLOVER
            if now - limits.rollover_tolerance <= corrected <= now + limits.future_margin:
                return corrected
        return WEEK_ROLLOVER

    def _is_jump(self, fix: Fix) -> bool:
        """Whether `fix` implies an impossible speed; keeps the jump state up to date."""
        if self._last is None or not self._too_fast(self._last, fix):
            self._last, self._jump, self._jump_streak = fix, None, 0
            return False
        if self._jump is not None and not self._too_fast(self._jump, fix):
            self._jump_streak += 1
        else:
            self._jump_streak = 1
        self._jump = fix
        if self._jump_streak >= self.limits.jump_reanchor_after:
            self._last, self._jump, self._jump_streak = fix, None, 0
            return False
        return True

    def _too_fast(self, a: Fix, b: Fix) -> bool:
        # At least a second: a receiver's clock steps by its epoch, and fixes out of order
        # or at the same time must not divide by zero.
        seconds = max(abs((b.time - a.time).total_seconds()), 1.0)
        return distance_m(a, b) > self.limits.max_speed_mps * seconds
