"""On time or late against the promised window: delivered at or before its end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class OnTime(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    NO_WINDOW = "no_window"  # nothing was promised: left out of the rate, but counted


def classify(delivered_at: datetime, window_end: datetime | None) -> OnTime:
    """At or before the window's end is on time (early counts as on time)."""
    if window_end is None:
        return OnTime.NO_WINDOW
    return OnTime.ON_TIME if delivered_at <= window_end else OnTime.LATE


@dataclass(slots=True)
class OnTimeTally:
    on_time: int = 0
    late: int = 0
    no_window: int = 0

    def add(self, outcome: OnTime) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    @property
    def delivered(self) -> int:
        return self.on_time + self.late + self.no_window

    @property
    def rate(self) -> float | None:
        """On time over deliveries that had a window; None when none had one."""
        judged = self.on_time + self.late
        return self.on_time / judged if judged else None
