"""An order's lifecycle: one declarative table of who may move an order where. Pure, no I/O.

    created → picking → picked → packed → loaded → in_transit → arriving → arrived → delivered
                      (any state before in_transit) → cancelled

Evidence moves orders: scans move packages (`PACKAGE_TABLE`), packages roll up to their order
(`rollup`), trips and geofences move loaded orders on (`ORDER_TABLE`). Evidence arrives late,
twice, or out of order (a pack scan buffered on a gateway reaches us after the dispatch scan),
so a move is applied only if the table allows it from the current state; anything else is an
`Ignored` with the reason, and nothing ever moves an order or a package backwards. The table
allows skipping forward (a dispatch scan of a package nobody scanned at packing proves it was
packed). Cancelling is the one exit sideways, and only before the goods leave.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from event_contract import Stage


class OrderState(StrEnum):
    CREATED = "created"
    PICKING = "picking"
    PICKED = "picked"
    PACKED = "packed"
    LOADED = "loaded"
    IN_TRANSIT = "in_transit"
    ARRIVING = "arriving"
    ARRIVED = "arrived"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class PackageState(StrEnum):
    CREATED = "created"
    PICKED = "picked"
    PACKED = "packed"
    LOADED = "loaded"
    DELIVERED = "delivered"


class Trigger(StrEnum):
    """What may move an order: the kind of evidence, not the target."""

    PICK_STARTED = "pick_started"  # a pick scan of one of its products or packages
    PACKAGES = "packages"  # its packages' states rolled up (see `rollup`)
    DEPARTED = "departed"  # the trip carrying it left the origin warehouse
    APPROACHING = "approaching"  # ETA under the threshold, or inside the approach radius
    ARRIVED = "arrived"  # a confirmed dwell in the stop's fence
    DELIVERED = "delivered"  # the driver's confirmation or a delivery scan
    CANCELLED = "cancelled"  # a user's decision


ORDER_RANK: Mapping[OrderState, int] = MappingProxyType(
    {state: rank for rank, state in enumerate(OrderState) if state is not OrderState.CANCELLED}
)
TERMINAL: frozenset[OrderState] = frozenset({OrderState.DELIVERED, OrderState.CANCELLED})
_BEFORE_TRANSIT = frozenset(s for s, r in ORDER_RANK.items() if r < ORDER_RANK["in_transit"])
_WAREHOUSE = (
    OrderState.CREATED,
    OrderState.PICKING,
    OrderState.PICKED,
    OrderState.PACKED,
    OrderState.LOADED,
)


def _below(state: OrderState, states: Iterable[OrderState] = ORDER_RANK) -> frozenset[OrderState]:
    return frozenset(s for s in states if ORDER_RANK[s] < ORDER_RANK[state])


# THE table: (trigger, target) -> the states it may move from. Nothing else moves an order.
ORDER_TABLE: Mapping[tuple[Trigger, OrderState], frozenset[OrderState]] = MappingProxyType(
    {
        (Trigger.PICK_STARTED, OrderState.PICKING): frozenset({OrderState.CREATED}),
        **{(Trigger.PACKAGES, target): _below(target, _WAREHOUSE) for target in _WAREHOUSE[1:]},
        (Trigger.DEPARTED, OrderState.IN_TRANSIT): frozenset({OrderState.LOADED}),
        (Trigger.APPROACHING, OrderState.ARRIVING): frozenset({OrderState.IN_TRANSIT}),
        (Trigger.ARRIVED, OrderState.ARRIVED): frozenset(
            {OrderState.IN_TRANSIT, OrderState.ARRIVING}
        ),
        (Trigger.DELIVERED, OrderState.DELIVERED): frozenset(
            {OrderState.IN_TRANSIT, OrderState.ARRIVING, OrderState.ARRIVED}
        ),
        (Trigger.CANCELLED, OrderState.CANCELLED): _BEFORE_TRANSIT,
    }
)

PACKAGE_RANK: Mapping[PackageState, int] = MappingProxyType(
    {state: rank for rank, state in enumerate(PackageState)}
)
# A scan at a read point of this stage moves a package to this state (receive is inbound:
# it moves stock, not outbound packages).
STAGE_TARGET: Mapping[Stage, PackageState] = MappingProxyType(
    {
        Stage.PICK: PackageState.PICKED,
        Stage.PACK: PackageState.PACKED,
        Stage.DISPATCH: PackageState.LOADED,
    }
)


@dataclass(frozen=True, slots=True)
class Moved:
    before: str
    after: str

    @property
    def moved(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Ignored:
    state: str
    reason: str

    @property
    def moved(self) -> bool:
        return False


Outcome = Moved | Ignored


def order_move(state: OrderState, trigger: Trigger, target: OrderState) -> Outcome:
    """Apply `trigger` proposing `target` to an order in `state`, by the table."""
    allowed = ORDER_TABLE.get((trigger, target))
    if allowed is None:
        return Ignored(state, f"{trigger} never moves an order to {target}")
    if state == target:
        return Ignored(state, f"already {state}")
    if state in allowed:
        return Moved(state, target)
    if state in TERMINAL:
        return Ignored(state, f"the order is {state}")
    if target is not OrderState.CANCELLED and ORDER_RANK[state] > ORDER_RANK[target]:
        return Ignored(state, f"already {state}, past {target}: late or out-of-order evidence")
    if target is OrderState.CANCELLED:
        return Ignored(state, f"cannot cancel an order that is {state}: the goods have left")
    return Ignored(state, f"{trigger} cannot move an order from {state} to {target}")


def package_move(state: PackageState, target: PackageState) -> Outcome:
    """A package moves only forward; any forward move is allowed (evidence may skip steps)."""
    if PACKAGE_RANK[target] > PACKAGE_RANK[state]:
        return Moved(state, target)
    if target == state:
        return Ignored(state, f"already {state}")
    return Ignored(state, f"already {state}, past {target}: late or out-of-order evidence")


def rollup(packages: Iterable[PackageState]) -> OrderState:
    """The warehouse state an order's packages add up to: the slowest package decides,
    except that any progress at all means picking has started."""
    ranks = [PACKAGE_RANK[p] for p in packages]
    if not ranks:
        return OrderState.CREATED
    slowest = PackageState(list(PackageState)[min(ranks)])
    by_slowest = {
        PackageState.CREATED: OrderState.CREATED,
        PackageState.PICKED: OrderState.PICKED,
        PackageState.PACKED: OrderState.PACKED,
        PackageState.LOADED: OrderState.LOADED,
        PackageState.DELIVERED: OrderState.LOADED,  # delivery itself comes by Trigger.DELIVERED
    }[slowest]
    if by_slowest is OrderState.CREATED and max(ranks) > 0:
        return OrderState.PICKING
    return by_slowest


def after_packages(state: OrderState, packages: Iterable[PackageState]) -> Outcome:
    """Move an order to what its packages add up to, if the table allows it."""
    target = rollup(packages)
    if target is OrderState.CREATED:
        return Ignored(state, "no package has moved")
    return order_move(state, Trigger.PACKAGES, target)
