"""Time in each stage of an order's life, from its history (`order_events`).

The stages are the order's lifecycle (orders/lifecycle.py) folded into what a warehouse
measures: waiting to be picked, picking, packed and waiting for the truck, loaded and waiting
to leave, on the road. A stage starts when the order first enters one of its states and ends
at the first move to a later stage. Evidence may skip a stage (a package scanned straight at
the pack station): the skipped stage was never entered and is not measured, and the stage
before it lasts until the jump. A stage still in progress, or ended by a cancellation, is
not measured either. `total` is created → delivered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    states: frozenset[str]


STAGES: tuple[Stage, ...] = (
    Stage("created", frozenset({"created"})),
    Stage("picking", frozenset({"picking", "picked"})),
    Stage("packed", frozenset({"packed"})),
    Stage("loaded", frozenset({"loaded"})),
    Stage("in_transit", frozenset({"in_transit", "arriving", "arrived"})),
)
DELIVERED = "delivered"
TOTAL = "total"
STAGE_NAMES: tuple[str, ...] = (*(s.name for s in STAGES), TOTAL)
_RANK: dict[str, int] = {state: i for i, s in enumerate(STAGES) for state in s.states}
_RANK[DELIVERED] = len(STAGES)
_ENDS_HISTORY = frozenset({"cancelled"})


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A move of the order: its 'created' event, or a 'state' event's `to_state`."""

    at: datetime
    state: str


@dataclass(frozen=True, slots=True)
class StageDuration:
    stage: str
    started_at: datetime
    ended_at: datetime

    @property
    def minutes(self) -> float:
        return (self.ended_at - self.started_at).total_seconds() / 60


def stage_durations(events: Iterable[OrderEvent]) -> list[StageDuration]:
    """Every completed stage of one order, in lifecycle order, then `total` if delivered.
    Events are taken in time order (ties keep the order given: pass them by id)."""
    done: list[StageDuration] = []
    current: int | None = None  # the rank of the stage the order is in
    entered: datetime | None = None
    created_at: datetime | None = None
    for event in sorted(events, key=lambda e: e.at):
        if event.state in _ENDS_HISTORY:
            break
        rank = _RANK.get(event.state)
        if rank is None or (current is not None and rank <= current):
            continue  # a repeat or a state no stage measures
        if current is not None and entered is not None:
            done.append(StageDuration(STAGES[current].name, entered, event.at))
        if rank == 0:
            created_at = event.at
        if rank == _RANK[DELIVERED]:
            if created_at is not None:
                done.append(StageDuration(TOTAL, created_at, event.at))
            break
        current, entered = rank, event.at
    return done
