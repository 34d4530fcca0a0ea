"""Deliveries against the promised window, per day of delivery (UTC)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from analytics import OnTime, OnTimeTally, classify

from .files import Sheet
from .query import Range

# When it was delivered: the proof of delivery's time, or else its move to `delivered`.
_DELIVERED = """
SELECT o.number, o.origin_site, o.window_end, coalesce(d.delivered_at, ev.at) AS delivered_at
FROM orders o
LEFT JOIN deliveries d ON d.order_id = o.id
LEFT JOIN LATERAL (
    SELECT min(e.at) AS at FROM order_events e
    WHERE e.order_id = o.id AND e.kind = 'state' AND e.to_state = 'delivered'
) ev ON true
WHERE o.state = 'delivered'
  AND coalesce(d.delivered_at, ev.at) >= %(start)s AND coalesce(d.delivered_at, ev.at) < %(end)s
  AND (%(site)s::text IS NULL OR o.origin_site = %(site)s)
ORDER BY delivered_at, o.number
"""


class OnTimeRow(BaseModel):
    day: date | None = Field(description="UTC; null: the whole range")
    delivered: int
    on_time: int
    late: int
    no_window: int = Field(description="delivered without a promised window: not in the rate")
    on_time_rate: float | None = Field(description="on_time / (on_time + late); null: none had one")


class DeliveredOrder(BaseModel):
    number: str
    site: str
    delivered_at: datetime
    window_end: datetime | None
    outcome: OnTime


class OnTimeReport(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    total: OnTimeRow
    rows: list[OnTimeRow]
    orders: list[DeliveredOrder]

    def sheets(self) -> list[Sheet]:
        return [
            Sheet.of("on_time", OnTimeRow, [*self.rows, self.total]),
            Sheet.of("orders", DeliveredOrder, self.orders),
        ]


def _row(day: date | None, t: OnTimeTally) -> OnTimeRow:
    rate = None if t.rate is None else round(t.rate, 4)
    return OnTimeRow(day=day, delivered=t.delivered, on_time=t.on_time, late=t.late,
                     no_window=t.no_window, on_time_rate=rate)  # fmt: skip


async def on_time_report(
    conn: AsyncConnection[Any], *, span: Range, site: str | None = None
) -> OnTimeReport:
    """Orders delivered in the range: on time when delivered at or before `window_end`."""
    cur = await conn.execute(_DELIVERED, {"start": span.start, "end": span.end, "site": site})
    days: dict[date, OnTimeTally] = defaultdict(OnTimeTally)
    total = OnTimeTally()
    orders = []
    for number, origin, window_end, delivered_at in await cur.fetchall():
        outcome = classify(delivered_at, window_end)
        days[delivered_at.astimezone(UTC).date()].add(outcome)
        total.add(outcome)
        orders.append(DeliveredOrder(number=number, site=origin, delivered_at=delivered_at,
                                     window_end=window_end, outcome=outcome))  # fmt: skip
    return OnTimeReport(start=span.start, end=span.end, total=_row(None, total),
                        rows=[_row(d, days[d]) for d in sorted(days)], orders=orders)  # fmt: skip
