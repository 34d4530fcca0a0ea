"""NMEA 0183 sentences of one epoch merged into one checked `Fix`. Pure: lines in, fixes out.

A receiver reports one epoch (one fix time) as several sentences: RMC (date, validity, speed,
course), GGA (fix quality, satellites, HDOP, altitude), VTG (speed, course) and GSA (fix type,
DOPs), possibly once per talker. Sentences with a time open or join the epoch of that time;
VTG and GSA, which carry none, join the open one. An epoch is closed, checked and emitted when
the next epoch starts (or on `flush`), because most receivers send GSA and VTG after GGA and
a GSA saying "no fix" must still be able to stop the fix: the price is one epoch of latency.

Every line fed is counted exactly once: `merged` into an emitted fix, `ignored` (a sentence a
fix does not use), or rejected under a reason in `rejects`. When an epoch is rejected, each
of its sentences counts under the epoch's reason.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from .nmea_sentences import NO_FIX, Sentence, SentenceRejected, read_sentence

NO_EPOCH = "no_epoch"  # a VTG or GSA before any sentence with a time: whose epoch?
NO_POSITION = "no_position"  # an epoch of sentences without RMC or GGA position
NO_DATE = "no_date"  # no RMC or ZDA yet, so the epoch's day is unknown
ZERO_POSITION = "zero_position"  # 0,0: what some receivers send before their first fix
JUMP = "jump"  # implied speed from the last accepted fix above the limit
HDOP = "hdop"
FUTURE = "future"
WEEK_ROLLOVER = "week_rollover"  # far in the past, and no multiple of 1024 weeks explains it
WEEK_ROLLOVER_CORRECTED = "week_rollover_corrected"  # not a reject: the fix was kept

GPS_WEEK_ROLLOVER = timedelta(weeks=1024)
EARTH_RADIUS_M = 6_371_008.8
# Position from the combined solution first, then GPS, then a single other constellation.
_TALKER_RANK = {"GN": 0, "GP": 1}

Now = Callable[[], datetime] | datetime | None


@dataclass(frozen=True, slots=True)
class NmeaLimits:
    """What the parser accepts; the defaults suit a road vehicle."""

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


@dataclass(slots=True)
class _Epoch:
    time: time
    sentences: list[Sentence]


def distance_m(a: Fix, b: Fix) -> float:
    """Great-circle distance between two fixes (haversine, spherical Earth)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class NmeaParser:
    """Feed lines, get `Fix`es. No I/O; one parser per receiver connection.

    `now` (an aware datetime or a callable returning one) enables the future-timestamp and
    week-rollover checks; without it (replaying an old log, say) they are skipped.
    """

    def __init__(self, limits: NmeaLimits | None = None, *, now: Now = None) -> None:
        self.limits = limits or NmeaLimits()
        self._now = now
        self.rejects: Counter[str] = Counter()
        self.ignored = 0
        self.merged = 0
        self.fixes = 0
        self.rollovers_corrected = 0
        self._epoch: _Epoch | None = None
        self._day_anchor: datetime | None = None  # the last epoch whose date was sent
        self._last: Fix | None = None
        self._jump: Fix | None = None  # the last fix rejected as a jump
        self._jump_streak = 0

    @property
    def sentences(self) -> int:
        """Lines fed so far, however they were counted."""
        return self.merged + self.ignored + self.rejects.total() + self._pending()

    def counts(self) -> dict[str, int]:
        """Everything counted so far, rejects by reason included."""
        return {
            "fixes": self.fixes,
            "merged": self.merged,
            "ignored": self.ignored,
            WEEK_ROLLOVER_CORRECTED: self.rollovers_corrected,
            **self.rejects,
        }

    def feed(self, line: str) -> list[Fix]:
        """One sentence in; the previous epoch's fix out when this sentence starts a new one."""
        try:
            sentence = read_sentence(line)
        except SentenceRejected as err:
            self.rejects[err.reason] += 1
            return []
        if sentence is None:
            self.ignored += 1
            return []
        out: list[Fix] = []
        if sentence.time is not None and (self._epoch is None or self._epoch.time != sentence.time):
            out = self.flush()
            self._epoch = _Epoch(sentence.time, [])
        if self._epoch is None:
            self.rejects[NO_EPOCH] += 1
        else:
            self._epoch.sentences.append(sentence)
        return out

    def flush(self) -> list[Fix]:
        """Close the pending epoch, e.g. at the end of a stream."""
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return []
        fix_or_reason = self._close(epoch)
        if isinstance(fix_or_reason, str):
            self.rejects[fix_or_reason] += len(epoch.sentences)
            return []
        self.merged += len(epoch.sentences)
        self.fixes += 1
        return [fix_or_reason]

    def _pending(self) -> int:
        return 0 if self._epoch is None else len(self._epoch.sentences)

    def _close(self, epoch: _Epoch) -> Fix | str:
        """The epoch's fix, or the reason it has none."""
        ss = epoch.sentences
        day = next((s.date for s in ss if s.date is not None), None)
        if day is not None:
            self._day_anchor = datetime.combine(day, epoch.time)
        # A void RMC or a GGA of quality 0 stops the epoch; a GGA claiming a fix from zero
        # satellites only abstains (see nmea_sentences).
        if any(not s.fix and (s.kind == "rmc" or s.quality == 0) for s in ss):
            return NO_FIX
        # One GSA per constellation: BeiDou may have no fix while GPS has one.
        gsas = [s for s in ss if s.kind == "gsa"]
        if gsas and not any(s.fix for s in gsas):
            return NO_FIX
        placed = sorted(
            (s for s in ss if s.lat is not None and s.fix),
            key=lambda s: (_TALKER_RANK.get(s.talker, 2), s.kind != "gga"),
        )
        if not placed:
            return NO_FIX if any(not s.fix for s in ss) else NO_POSITION
        when = self._when(epoch.time, day)
        if when is None:
            return NO_DATE
        when_or_reason = self._check_time(when)
        if isinstance(when_or_reason, str):
            return when_or_reason
        best = placed[0]
        assert best.lat is not None and best.lon is not None
        if best.lat == 0 and best.lon == 0:
            return ZERO_POSITION
        gga = next((s for s in placed if s.kind == "gga"), None)
        hdop = _first(s.hdop for s in (*placed, *gsas))
        if hdop is not None and hdop > self.limits.max_hdop:
            return HDOP
        fix = Fix(
            time=when_or_reason,
            lat=best.lat,
            lon=best.lon,
            speed_mps=_first(s.speed_mps for s in _motion(ss)),
            heading_deg=_first(s.course_deg for s in _motion(ss)),
            fix_quality=(gga.quality or 1) if gga else 1,
            hdop=hdop,
            satellites=gga.satellites if gga else None,
            altitude_m=gga.altitude_m if gga else None,
        )
        if self._is_jump(fix):
            return JUMP
        if fix.time != when:
            self.rollovers_corrected += 1
        return fix

    def _when(self, tod: time, day: date | None) -> datetime | None:
        """The epoch's full UTC time, dating a GGA-only epoch from the last date sent."""
        if day is not None:
            return datetime.combine(day, tod)
        anchor = self._day_anchor
        if anchor is None:
            return None
        when = datetime.combine(anchor.date(), tod, tzinfo=anchor.tzinfo)
        # Within twelve hours of the anchor: a smaller time of day means midnight passed.
        if when - anchor < -timedelta(hours=12):
            when += timedelta(days=1)
        elif when - anchor > timedelta(hours=12):
            when -= timedelta(days=1)
        self._day_anchor = when
        return when

    def _check_time(self, when: datetime) -> datetime | str:
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


def _motion(ss: list[Sentence]) -> list[Sentence]:
    # RMC before VTG, as RMC is the sentence every receiver sends; combined talker first.
    return sorted(
        (s for s in ss if s.kind in ("rmc", "vtg")),
        key=lambda s: (s.kind != "rmc", _TALKER_RANK.get(s.talker, 2)),
    )


def _first(values: Iterable[float | None]) -> float | None:
    return next((v for v in values if v is not None), None)


def decode_lines(
    lines: Iterable[str], *, limits: NmeaLimits | None = None, now: Now = None
) -> tuple[list[Fix], dict[str, int]]:
    """All fixes of a finite run of sentences, and the parser's counts."""
    parser = NmeaParser(limits, now=now)
    fixes: list[Fix] = []
    for line in lines:
        fixes += parser.feed(line)
    fixes += parser.flush()
    return fixes, parser.counts()
