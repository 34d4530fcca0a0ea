"""A trip's end: when a departed trip is completed. Pure, no I/O.

    planned → loading → departed → completed        (cancelled: a dispatcher's decision)

A trip departs when its vehicle is confirmed out of the trip's origin fence (or the API
departs it). It is **completed** when, after departing, the vehicle is confirmed back in the
origin fence with every stop reached (`arrived` or `done`): it is home and has nowhere left
to go. An entry with a stop still open changes nothing (a truck passing its own yard
mid-route is not done); the trip stays departed, and the next entry after the last stop
completes it. Deliveries not yet confirmed do not hold a trip open: the stop was reached,
and the order stays `arrived` for the driver or a dispatcher to confirm.

The adapter (ingest_service/tracking) decides which transitions are entries into the trip's
own origin fence and asks `complete_on_return`; this module only weighs the facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class TripState(StrEnum):
    PLANNED = "planned"
    LOADING = "loading"
    DEPARTED = "departed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class StopState(StrEnum):
    PENDING = "pending"
    ARRIVING = "arriving"
    ARRIVED = "arrived"
    DONE = "done"  # every order of the stop delivered (or cancelled)


REACHED: frozenset[StopState] = frozenset({StopState.ARRIVED, StopState.DONE})


@dataclass(frozen=True, slots=True)
class Completed:
    at_s: float  # when the vehicle came back: the entry's start (POSIX seconds)

    @property
    def completed(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class NotCompleted:
    reason: str

    @property
    def completed(self) -> bool:
        return False


TripEnd = Completed | NotCompleted


def complete_on_return(
    state: TripState,
    departed_at_s: float | None,
    stops: Iterable[tuple[int, StopState]],
    entered_at_s: float,
) -> TripEnd:
    """The trip's vehicle was confirmed entering the trip's origin fence at `entered_at_s`
    (the transition's `at`): is the trip completed? `stops` are (seq, state) pairs as they
    are now; a trip without stops is completed by its vehicle's return alone."""
    if state is not TripState.DEPARTED:
        return NotCompleted(f"the trip is {state}, not departed")
    if departed_at_s is None:
        return NotCompleted("the trip has no departure time to come back after")
    if entered_at_s <= departed_at_s:
        return NotCompleted("the vehicle entered the origin before the trip departed")
    open_stops = sorted(seq for seq, s in stops if s not in REACHED)
    if open_stops:
        listed = ", ".join(str(seq) for seq in open_stops)
        return NotCompleted(f"back at the origin with stop(s) {listed} not reached yet")
    return Completed(entered_at_s)
