"""Purchase orders: their statuses, who moves them, and what a PO line is. Pure.

sent (to the supplier) → acknowledged (by the supplier) → closed (by the buyer, once
received); sent or acknowledged → cancelled (by the buyer). Closed and cancelled are final.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType


class PoStatus(StrEnum):
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Side(StrEnum):
    """Who may make a move: the buyer's staff or the supplier's users."""

    BUYER = "buyer"
    SUPPLIER = "supplier"


class LineKind(StrEnum):
    """Only material lines are shipped, so only they may be on an ASN."""

    MATERIAL = "material"
    SERVICE = "service"


# (from, to) -> the side that may make the move.
PO_TABLE: Mapping[tuple[PoStatus, PoStatus], Side] = MappingProxyType(
    {
        (PoStatus.SENT, PoStatus.ACKNOWLEDGED): Side.SUPPLIER,
        (PoStatus.SENT, PoStatus.CANCELLED): Side.BUYER,
        (PoStatus.ACKNOWLEDGED, PoStatus.CANCELLED): Side.BUYER,
        (PoStatus.ACKNOWLEDGED, PoStatus.CLOSED): Side.BUYER,
    }
)

# A PO in these statuses is still waiting for goods: ASNs may be made and reminders sent.
OPEN_PO = frozenset({PoStatus.SENT, PoStatus.ACKNOWLEDGED})


def po_move(number: str, status: PoStatus, target: PoStatus, side: Side) -> str | None:
    """None if `side` may move PO `number` from `status` to `target`; otherwise why not."""
    allowed = PO_TABLE.get((status, target))
    if allowed is side:
        return None
    if allowed is not None:
        return f"purchase order {number}: only the {allowed} may make it {target}"
    if status is target:
        return f"purchase order {number} is already {status}"
    if status in (PoStatus.CLOSED, PoStatus.CANCELLED):
        return f"purchase order {number} is {status}; nothing more can happen to it"
    return f"purchase order {number} is {status} and cannot become {target}"


def asn_allowed(number: str, status: PoStatus) -> str | None:
    """None if ASNs may be made or submitted against the PO; otherwise why not."""
    if status is PoStatus.ACKNOWLEDGED:
        return None
    if status is PoStatus.SENT:
        return f"purchase order {number} is not acknowledged yet; acknowledge it first"
    return f"purchase order {number} is {status}; no ASN can be made against it"


@dataclass(frozen=True, slots=True)
class PoLine:
    line_no: int
    sku: str
    kind: LineKind
    quantity: int
    delivery_date: date | None = None
