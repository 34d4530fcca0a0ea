"""Loading at a dispatch door: is this package allowed onto this door's trip? Pure, no I/O.

A dispatch door is assigned a vehicle and a trip. A package scanned there is loaded onto that
trip, unless it belongs somewhere else: then the load is wrong, the dock hears it at once (a
negative verdict on the gateway's feedback topic) and a wrong-load exception is opened. When a
trip departs, every package planned on it and not loaded is a short load.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from event_contract import VerdictKind

from .exceptions import ExceptionKind
from .lifecycle import OrderState, PackageState


@dataclass(frozen=True, slots=True)
class PackageOnDock:
    """What the rules need to know about a scanned package."""

    sscc: str
    order_number: str
    order_state: OrderState
    planned_trip: str | None  # the trip its order is planned on
    loaded_trip: str | None  # the trip it is loaded on, if any
    state: PackageState


@dataclass(frozen=True, slots=True)
class DoorAssignment:
    door: str
    trip: str | None
    vehicle: str | None


@dataclass(frozen=True, slots=True)
class LoadDecision:
    verdict: VerdictKind
    message: str
    load: bool  # record the package as loaded onto the door's trip
    exception: ExceptionKind | None = None

    @property
    def ok(self) -> bool:
        return self.verdict in (VerdictKind.ACCEPTED, VerdictKind.DUPLICATE)


def judge_load(package: PackageOnDock, door: DoorAssignment) -> LoadDecision:
    """The verdict on one package scanned at a dispatch door."""
    p, d = package, door
    if d.trip is None:
        return LoadDecision(
            VerdictKind.WRONG_DOOR,
            f"{d.door} has no trip assigned: assign a vehicle and trip before loading",
            load=False,
        )
    if p.order_state is OrderState.CANCELLED:
        return LoadDecision(
            VerdictKind.ORDER_CANCELLED,
            f"STOP: order {p.order_number} is cancelled; take package {p.sscc} off the truck",
            load=False,
            exception=ExceptionKind.WRONG_LOAD,
        )
    if p.loaded_trip == d.trip:
        return LoadDecision(
            VerdictKind.DUPLICATE, f"{p.sscc} is already loaded on trip {d.trip}", load=False
        )
    if p.loaded_trip is not None or p.state is PackageState.DELIVERED:
        where = f"trip {p.loaded_trip}" if p.loaded_trip else "its customer"
        return LoadDecision(
            VerdictKind.ALREADY_DISPATCHED,
            f"STOP: package {p.sscc} is already loaded on {where}",
            load=False,
            exception=ExceptionKind.WRONG_LOAD,
        )
    if p.planned_trip != d.trip:
        planned = f"trip {p.planned_trip}" if p.planned_trip else "no trip yet"
        return LoadDecision(
            VerdictKind.WRONG_TRUCK,
            f"STOP: order {p.order_number} is planned on {planned}, not trip {d.trip}",
            load=False,
            exception=ExceptionKind.WRONG_LOAD,
        )
    return LoadDecision(
        VerdictKind.ACCEPTED, f"order {p.order_number}: {p.sscc} loaded on trip {d.trip}", True
    )


def short_load(planned: Iterable[PackageOnDock], trip: str) -> list[PackageOnDock]:
    """The packages planned on `trip` (orders not cancelled) that are not loaded on it."""
    return [
        p
        for p in planned
        if p.planned_trip == trip
        and p.order_state is not OrderState.CANCELLED
        and p.loaded_trip != trip
    ]
