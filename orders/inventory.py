"""Stock rules: oversell checks, low-stock alerts and replenishment hints. Pure, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class OversellPolicy(StrEnum):
    WARN = "warn"  # create the order, open an oversell exception
    REFUSE = "refuse"  # refuse the order with the shortfall


@dataclass(frozen=True, slots=True)
class Shortfall:
    sku: str
    wanted: int
    available: int

    @property
    def missing(self) -> int:
        return self.wanted - self.available

    def __str__(self) -> str:
        return f"{self.sku}: {self.wanted} wanted, {self.available} available"


def shortfalls(wanted: Mapping[str, int], available: Mapping[str, int]) -> list[Shortfall]:
    """The lines an order cannot be served from stock (available = on hand minus what open
    orders already want), in SKU order."""
    return [
        Shortfall(sku, qty, available.get(sku, 0))
        for sku, qty in sorted(wanted.items())
        if qty > available.get(sku, 0)
    ]


@dataclass(frozen=True, slots=True)
class ReplenishmentHint:
    sku: str
    on_hand: int
    threshold: int
    daily_usage: float
    lead_time_days: float
    reorder_qty: int

    def __str__(self) -> str:
        return (
            f"{self.sku}: {self.on_hand} on hand, below {self.threshold}; uses "
            f"{self.daily_usage:.1f}/day, lead time {self.lead_time_days:g} d: "
            f"reorder {self.reorder_qty}"
        )


def replenishment_hint(
    sku: str,
    on_hand: int,
    threshold: int,
    used_last_days: int,
    days: float,
    lead_time_days: float,
) -> ReplenishmentHint | None:
    """None while stock is above its threshold. Otherwise how much to order: what the lead
    time will use at the recent average daily usage, plus the threshold, minus what is left."""
    if on_hand > threshold:
        return None
    daily = used_last_days / days if days > 0 else 0.0
    need = math.ceil(daily * lead_time_days) + threshold - on_hand
    return ReplenishmentHint(sku, on_hand, threshold, daily, lead_time_days, max(need, 1))
