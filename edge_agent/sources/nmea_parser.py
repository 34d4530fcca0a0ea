"""NMEA 0183 sentences of one epoch merged into one checked `Fix`. Pure: lines in, fixes out.

A receiver reports one epoch (one fix time) as several sentences: RMC (date, validity, speed,
course), GGA (fix quality, satellites, HDOP, altitude), GLL (position, validity), VTG (speed,
course) and GSA (fix type, DOPs), possibly once per talker. Sentences with a time open or join
the epoch of that time; VTG and GSA, which carry none, join the open one.
An epoch is closed, checked and emitted when the next epoch starts (or on `flush`), because
most receivers send GSA and VTG after GGA and a GSA saying "no fix" must still be able to
stop the fix: the price is one epoch of latency.

Every line fed is counted exactly once: `merged` into an emitted fix, `ignored` (a sentence a
fix does not use), or rejected under a reason in `rejects`. When an epoch is rejected, each
of its sentences counts under the epoch's reason.

An epoch without a date before the stream has given any (a GGA or GLL ahead of the first RMC
or ZDA) is held, up to `MAX_UNDATED_EPOCHS`, and dated backwards from the first date sent.
The checks shared with other protocols (clock, 0,0, HDOP, jumps) live in `fix_filter`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .fix_filter import (
    FUTURE,
    HDOP,
    JUMP,
    WEEK_ROLLOVER,
    WEEK_ROLLOVER_CORRECTED,
    ZERO_POSITION,
    Fix,
    FixFilter,
    FixLimits,
    Now,
    distance_m,
)
from .nmea_sentences import NO_FIX, Sentence, SentenceRejected, read_sentence

__all__ = [
    "FUTURE",
    "HDOP",
    "JUMP",
    "MAX_UNDATED_EPOCHS",
    "NO_DATE",
    "NO_EPOCH",
    "NO_POSITION",
    "WEEK_ROLLOVER",
    "WEEK_ROLLOVER_CORRECTED",
    "ZERO_POSITION",
    "Fix",
    "NmeaLimits",
    "NmeaParser",
    "decode_lines",
    "distance_m",
]

NO_EPOCH = "no_epoch"  # a VTG or GSA before any sentence with a time: whose epoch?
NO_POSITION = "no_position"  # an epoch of sentences without RMC, GGA or GLL position
NO_DATE = "no_date"  # no RMC or ZDA yet, so the epoch's day is unknown

# Epochs held for a date; at 1 Hz, a receiver that sends no RMC or ZDA for this many
# seconds is dating nothing, and the oldest held epoch is rejected.
MAX_UNDATED_EPOCHS = 16
# Position from the combined solution first, then GPS, then a single other constellation;
# within a talker, GGA's position, then RMC's, then GLL's.
_TALKER_RANK = {"GN": 0, "GP": 1}
_KIND_RANK = {"gga": 0, "rmc": 1, "gll": 2}

NmeaLimits = FixLimits  # the name the NMEA sources have always used


@dataclass(slots=True)
class _Epoch:
    time: time
    sentences: list[Sentence]


class NmeaParser:
    """Feed lines, get `Fix`es. No I/O; one parser per receiver connection.

    `now` (an aware datetime or a callable returning one) enables the future-timestamp and
    week-rollover checks; without it (replaying an old log, say) they are skipped.
    """

    def __init__(self, limits: NmeaLimits | None = None, *, now: Now = None) -> None:
        self.filter = FixFilter(limits, now=now)
        self.limits = self.filter.limits
        self.rejects: Counter[str] = Counter()
        self.ignored = 0
        self.merged = 0
        self.fixes = 0
        self._epoch: _Epoch | None = None
        self._undated: deque[_Epoch] = deque()  # closed, waiting for the first date
        self._day_anchor: datetime | None = None  # the last epoch whose date was sent

    @property
    def rollovers_corrected(self) -> int:
        return self.filter.rollovers_corrected

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
            out = self._close_open()
            self._epoch = _Epoch(sentence.time, [])
        if self._epoch is None:
            self.rejects[NO_EPOCH] += 1
        else:
            self._epoch.sentences.append(sentence)
        return out

    def flush(self) -> list[Fix]:
        """Close the pending epoch, e.g. at the end of a stream; undated epochs are rejected."""
        out = self._close_open()
        while self._undated:
            self.rejects[NO_DATE] += len(self._undated.popleft().sentences)
        return out

    def _pending(self) -> int:
        held = sum(len(e.sentences) for e in self._undated)
        return held + (0 if self._epoch is None else len(self._epoch.sentences))

    def _close_open(self) -> list[Fix]:
        epoch, self._epoch = self._epoch, None
        if epoch is None:
            return []
        out: list[Fix] = []
        day = _date_of(epoch)
        if day is not None and self._undated:
            # The first date: the held epochs precede this one by seconds, not days.
            anchor = datetime.combine(day, epoch.time)
            while self._undated:
                self._day_anchor = anchor
                out += self._settle(self._undated.popleft())
        return out + self._settle(epoch)

    def _settle(self, epoch: _Epoch) -> list[Fix]:
        """Count the epoch's sentences under its outcome; its fix, if it has one."""
        fix_or_reason = self._close(epoch)
        if fix_or_reason == NO_DATE and self._day_anchor is None:
            self._undated.append(epoch)
            if len(self._undated) > MAX_UNDATED_EPOCHS:
                self.rejects[NO_DATE] += len(self._undated.popleft().sentences)
            return []
        if isinstance(fix_or_reason, str):
            self.rejects[fix_or_reason] += len(epoch.sentences)
            return []
        self.merged += len(epoch.sentences)
        self.fixes += 1
        return [fix_or_reason]

    def _close(self, epoch: _Epoch) -> Fix | str:
        """The epoch's fix, or the reason it has none."""
        ss = epoch.sentences
        day = _date_of(epoch)
        if day is not None:
            self._day_anchor = datetime.combine(day, epoch.time)
        # A void RMC or GLL, or a GGA of quality 0, stops the epoch; a GGA claiming a fix
        # from zero satellites only abstains (see nmea_sentences).
        if any(not s.fix and (s.kind in ("rmc", "gll") or s.quality == 0) for s in ss):
            return NO_FIX
        # One GSA per constellation: BeiDou may have no fix while GPS has one.
        gsas = [s for s in ss if s.kind == "gsa"]
        if gsas and not any(s.fix for s in gsas):
            return NO_FIX
        placed = sorted(
            (s for s in ss if s.lat is not None and s.fix),
            key=lambda s: (_TALKER_RANK.get(s.talker, 2), _KIND_RANK.get(s.kind, 3)),
        )
        if not placed:
            return NO_FIX if any(not s.fix for s in ss) else NO_POSITION
        when = self._when(epoch.time, day)
        if when is None:
            return NO_DATE
        best = placed[0]
        assert best.lat is not None and best.lon is not None
        gga = next((s for s in placed if s.kind == "gga"), None)
        return self.filter.check(
            Fix(
                time=when,
                lat=best.lat,
                lon=best.lon,
                speed_mps=_first(s.speed_mps for s in _motion(ss)),
                heading_deg=_first(s.course_deg for s in _motion(ss)),
                fix_quality=(gga.quality or 1) if gga else 1,
                hdop=_first(s.hdop for s in (*placed, *gsas)),
                satellites=gga.satellites if gga else None,
                altitude_m=gga.altitude_m if gga else None,
            )
        )

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


def _date_of(epoch: _Epoch) -> date | None:
    return next((s.date for s in epoch.sentences if s.date is not None), None)


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
