"""Proof of delivery: the driver (or a dispatcher) confirms an order delivered, with where,
and optionally a photo and a signature. The lifecycle table decides whether it may be."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ingest_service.dispatch.errors import Conflict, NotFound, Refused
from orders.lifecycle import Ignored, OrderState, Trigger, order_move


class NotTheDriver(Refused):
    status = 403


class DeliveryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    photo_ref: str | None = Field(None, min_length=1, max_length=500, description="stored photo")
    signature_ref: str | None = Field(None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _both_or_neither(self) -> DeliveryIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon where it was delivered, or neither")
        return self


class DeliveryOut(BaseModel):
    order_number: str
    state: str
    delivered_at: datetime
    lat: float | None
    lon: float | None
    confirmed_by: str
    photo_ref: str | None
    signature_ref: str | None
    packages_delivered: int


async def deliver_order(
    conn: AsyncConnection[Any],
    number: str,
    proof: DeliveryIn,
    *,
    actor: str,
    driver_only: bool = False,
) -> DeliveryOut:
    """Move an order to delivered by the lifecycle table and keep the proof. With
    `driver_only`, only the driver of the order's trip may confirm it."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT o.id, o.state, o.trip_id, o.stop_seq, t.driver FROM orders o"
        " LEFT JOIN trips t ON t.id = o.trip_id WHERE o.number = %s FOR UPDATE OF o",
        (number,),
    )
    order = await cur.fetchone()
    if order is None:
        raise NotFound(f"no order {number}: check the number")
    if driver_only and order["driver"] != actor:
        raise NotTheDriver(
            f"order {number} is on trip {order['trip_id'] or '(none)'}, driven by"
            f" {order['driver'] or 'nobody yet'}: only its driver or a dispatcher confirms it"
        )
    outcome = order_move(OrderState(order["state"]), Trigger.DELIVERED, OrderState.DELIVERED)
    if isinstance(outcome, Ignored):
        raise Conflict(
            f"order {number} cannot be delivered: {outcome.reason}"
            + (" (it has not left the warehouse yet)" if outcome.state in _NOT_LEFT else "")
        )
    await cur.execute(
        "UPDATE orders SET state = 'delivered', updated_at = now(), version = version + 1"
        " WHERE id = %s",
        (order["id"],),
    )
    await cur.execute(
        "INSERT INTO deliveries (order_id, delivered_at, lat, lon, confirmed_by, photo_ref,"
        " signature_ref) VALUES (%s, now(), %s, %s, %s, %s, %s) RETURNING delivered_at",
        (order["id"], proof.lat, proof.lon, actor, proof.photo_ref, proof.signature_ref),
    )
    row = await cur.fetchone()
    assert row is not None
    await cur.execute(
        "UPDATE packages SET state = 'delivered' WHERE order_id = %s AND state <> 'delivered'",
        (order["id"],),
    )
    packages = cur.rowcount
    detail = {"proof": proof.model_dump(exclude_none=True), "packages_delivered": packages}
    await cur.execute(
        "INSERT INTO order_events (order_id, kind, from_state, to_state, trigger, actor, detail)"
        " VALUES (%s, 'state', %s, 'delivered', %s, %s, %s)",
        (order["id"], order["state"], Trigger.DELIVERED.value, actor, Jsonb(detail)),
    )
    if order["stop_seq"] is not None:
        # The stop is done once nothing of it is left to deliver.
        await cur.execute(
            "UPDATE trip_stops s SET state = 'done' WHERE s.trip_id = %(t)s AND s.seq = %(s)s"
            " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.trip_id = %(t)s"
            "   AND o.stop_seq = %(s)s AND o.state NOT IN ('delivered', 'cancelled'))",
            {"t": order["trip_id"], "s": order["stop_seq"]},
        )
    return DeliveryOut(
        order_number=number,
        state=OrderState.DELIVERED,
        delivered_at=row["delivered_at"],
        confirmed_by=actor,
        packages_delivered=packages,
        **proof.model_dump(),
    )


_NOT_LEFT = frozenset(
    {
        OrderState.CREATED,
        OrderState.PICKING,
        OrderState.PICKED,
        OrderState.PACKED,
        OrderState.LOADED,
    }
)
