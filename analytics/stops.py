"""How long a vehicle stood at a stop: from its arrival to its exit from the stop's fence, or,
without a confirmed exit (the truck's tracker went quiet, the fence was never left), to the
last delivery made there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class DwellEnd:
    at: datetime
    source: Literal["exit", "delivery"]


def dwell_end(
    arrived_at: datetime, exited_at: datetime | None, delivered_at: datetime | None
) -> DwellEnd | None:
    """The end of the dwell: the exit when there is one after the arrival, else a delivery
    at or after it; None while the stop is still open."""
    if exited_at is not None and exited_at >= arrived_at:
        return DwellEnd(exited_at, "exit")
    if delivered_at is not None and delivered_at >= arrived_at:
        return DwellEnd(delivered_at, "delivery")
    return None
