"""Quiet hours: when may a message to this customer go?

Pure: given the instant, the customer's quiet window (local wall-clock times, which may wrap
midnight, e.g. 22:00-07:00) and their time zone (a tzinfo; the caller builds it, e.g. with
zoneinfo.ZoneInfo), the earliest instant at or after `now` that is outside the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time  # local wall-clock time the quiet starts (inclusive)
    end: time  # local wall-clock time it ends (exclusive)

    def contains(self, local: time) -> bool:
        """Is this local wall-clock time inside the window? An empty window (start == end)
        contains nothing."""
        local = local.replace(tzinfo=None, fold=0)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # wraps midnight


def next_allowed(now: datetime, quiet: QuietHours | None, zone: tzinfo) -> datetime:
    """The earliest instant >= now outside the customer's quiet hours (now if not quiet).

    `now` must be timezone-aware. The answer is in `now`'s time zone.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if quiet is None:
        return now
    local = now.astimezone(zone)
    if not quiet.contains(local.timetz()):
        return now
    # Inside the window: it ends at the next local `end` wall-clock time after now.
    end_day = local.date()
    if quiet.start > quiet.end and local.time().replace(fold=0) >= quiet.start:
        end_day += timedelta(days=1)  # in the evening part of a window that wraps midnight
    end_local = datetime.combine(end_day, quiet.end, tzinfo=zone)
    # Round-trip through UTC: a wall-clock end that falls in a DST gap becomes a real instant.
    end = end_local.astimezone(now.tzinfo)
    return max(end, now)
