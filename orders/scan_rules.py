"""What one scan means for the package, order or product it matched. Pure, no I/O.

The matcher (ingest side) finds what a scan's code names and locks it; `decide` says what
follows: the package's next state, whether it is loaded onto the door's trip, the verdict
for the dock, an exception to open, or why nothing moves. The stage comes from the read
point's configuration, carried on the scan.
"""

from __future__ import annotations

from dataclasses import dataclass

from event_contract import Stage, VerdictKind

from .dispatch import DoorAssignment, PackageOnDock, judge_load
from .exceptions import ExceptionKind
from .lifecycle import STAGE_TARGET, Ignored, OrderState, PackageState, package_move


@dataclass(frozen=True, slots=True)
class OrderView:
    id: int
    number: str
    state: OrderState
    planned_trip: str | None
    package_count: int


@dataclass(frozen=True, slots=True)
class PackageView:
    id: int
    sscc: str
    state: PackageState
    loaded_trip: str | None
    order: OrderView


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: VerdictKind
    message: str
    package_to: PackageState | None = None  # move the package here
    load_trip: str | None = None  # record it loaded onto this trip
    start_picking: bool = False  # an order label or product scan at a pick station
    exception: ExceptionKind | None = None


def decide_package(
    package: PackageView, stage: Stage | None, door: DoorAssignment | None
) -> Decision:
    """A scan that named a package (by its SSCC or EPC)."""
    order = package.order
    where = f"order {order.number}, package {package.sscc}"
    if stage is None:
        return Decision(VerdictKind.ACCEPTED, f"{where}: seen (this read point has no stage)")
    if stage is Stage.RECEIVE:
        return Decision(VerdictKind.ACCEPTED, f"{where}: outbound package seen at receiving")
    if stage is Stage.DISPATCH:
        if door is None:
            door = DoorAssignment(door="(a station)", trip=None, vehicle=None)
        judged = judge_load(
            PackageOnDock(
                sscc=package.sscc,
                order_number=order.number,
                order_state=order.state,
                planned_trip=order.planned_trip,
                loaded_trip=package.loaded_trip,
                state=package.state,
            ),
            door,
        )
        if not judged.load:
            return Decision(judged.verdict, judged.message, exception=judged.exception)
        move = package_move(package.state, PackageState.LOADED)
        return Decision(
            VerdictKind.ACCEPTED,
            judged.message,
            package_to=PackageState.LOADED if move.moved else None,
            load_trip=door.trip,
        )
    if order.state is OrderState.CANCELLED:
        return Decision(
            VerdictKind.ORDER_CANCELLED,
            f"STOP: order {order.number} is cancelled; set package {package.sscc} aside",
        )
    target = STAGE_TARGET[stage]
    move = package_move(package.state, target)
    if isinstance(move, Ignored):
        # Read again, or read late: harmless, and the dock hears where the package is.
        return Decision(VerdictKind.DUPLICATE, f"{where}: {move.reason}")
    return Decision(VerdictKind.ACCEPTED, f"{where}: {target}", package_to=target)


def decide_order_label(
    order: OrderView, stage: Stage | None, packages: list[PackageView], door: DoorAssignment | None
) -> Decision:
    """A scan of the order's own label (its number). At a pick station it starts picking; at
    pack or dispatch it stands for the order's only package, if it has exactly one."""
    if order.state is OrderState.CANCELLED:
        return Decision(VerdictKind.ORDER_CANCELLED, f"STOP: order {order.number} is cancelled")
    if stage is Stage.PICK:
        if order.state is OrderState.CREATED:
            return Decision(
                VerdictKind.ACCEPTED, f"order {order.number}: picking", start_picking=True
            )
        return Decision(VerdictKind.DUPLICATE, f"order {order.number} is already {order.state}")
    if stage in (Stage.PACK, Stage.DISPATCH):
        if len(packages) == 1:
            return decide_package(packages[0], stage, door)
        return Decision(
            VerdictKind.INVALID_CODE,
            f"order {order.number} has {len(packages)} packages: scan each package's label",
        )
    return Decision(VerdictKind.ACCEPTED, f"order {order.number}: seen ({order.state})")


def decide_product(sku: str, name: str, stage: Stage | None) -> Decision:
    """A GTIN (AI 01, EAN/UPC, SGTIN tag) that is a product, not a package."""
    if stage is Stage.RECEIVE:
        return Decision(VerdictKind.ACCEPTED, f"received 1 x {sku} ({name})")
    if stage is Stage.PICK:
        return Decision(VerdictKind.ACCEPTED, f"{sku} ({name}) at the pick station")
    return Decision(
        VerdictKind.INVALID_CODE,
        f"{sku} ({name}) is a product code: scan the package's SSCC label here",
    )


def decide_unknown(code: str, reason: str) -> Decision:
    return Decision(
        VerdictKind.UNKNOWN_CODE, f"unknown code {code[:40]}: {reason}; kept for a dispatcher"
    )
