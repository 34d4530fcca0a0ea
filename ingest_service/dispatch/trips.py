"""Trips: create them, read them with their orders and packages, plan orders onto them.

Planned is `orders.trip_id` (where an order should go); loaded is `packages.loaded_trip`
(where a dock scan put a package). Departure is in `depart.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from orders.lifecycle import ORDER_RANK, OrderState
from orders.models import Ref

from .errors import Conflict, NotFound, Refused
from .fleet import OPEN_TRIP_STATES

TRIP_STATES = ("planned", "loading", "departed", "completed", "cancelled")


class TripIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Ref
    vehicle: Ref | None = Field(None, description="an active vehicle; may be set later")
    origin_site: Ref


class TripFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: list[str] | None = Field(None, description=f"any of {', '.join(TRIP_STATES)}")
    vehicle: str | None = None
    origin_site: str | None = None
    created_since: AwareDatetime | None = None
    limit: int = Field(100, ge=1, le=1000, description="newest first")


class TripSummary(BaseModel):
    id: str
    vehicle_id: str | None
    origin_site: str
    state: str
    departed_at: datetime | None
    created_at: datetime
    orders_planned: int = Field(description="orders planned on it, not cancelled")
    packages_planned: int = Field(description="packages of those orders")
    packages_loaded: int = Field(description="packages loaded on it by a dock scan")


class TripPackage(BaseModel):
    id: int
    sscc: str
    order_number: str
    state: str
    loaded_trip: str | None
    loaded_at: datetime | None


class TripOrder(BaseModel):
    number: str
    state: str
    planned: bool = Field(description="planned on this trip (false: only loaded on it)")
    packages: int
    loaded: int = Field(description="its packages loaded on this trip")


class TripOut(TripSummary):
    orders: list[TripOrder]
    packages: list[TripPackage] = Field(description="planned on it or loaded on it")


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    orders: list[Ref] = Field(min_length=1, max_length=1000, description="order numbers")


class PlanRefusal(BaseModel):
    number: str
    reason: str


class PlanResult(BaseModel):
    trip: str
    planned: list[str] = Field(description="now planned on the trip (each change recorded)")
    unchanged: list[str] = Field(description="already planned on it")
    refused: list[PlanRefusal]


_SUMMARY = (
    "SELECT t.id, t.vehicle_id, t.origin_site, t.state, t.departed_at, t.created_at,"
    " (SELECT count(*) FROM orders o WHERE o.trip_id = t.id AND o.state <> 'cancelled')"
    "   AS orders_planned,"
    " (SELECT count(*) FROM packages p JOIN orders o ON o.id = p.order_id"
    "   WHERE o.trip_id = t.id AND o.state <> 'cancelled') AS packages_planned,"
    " (SELECT count(*) FROM packages p WHERE p.loaded_trip = t.id) AS packages_loaded"
    " FROM trips t"
)


async def create_trip(conn: AsyncConnection[Any], trip: TripIn) -> TripOut:
    if trip.vehicle is not None:
        cur = await conn.execute("SELECT active FROM vehicles WHERE id = %s", (trip.vehicle,))
        row = await cur.fetchone()
        if row is None:
            raise Refused(f"no vehicle {trip.vehicle}: add it with POST /api/v1/vehicles first")
        if not row[0]:
            raise Refused(
                f"vehicle {trip.vehicle} is out of service: reactivate it with PATCH"
                f" /api/v1/vehicles/{trip.vehicle} or pick another"
            )
    cur = await conn.execute(
        "INSERT INTO trips (id, vehicle_id, origin_site) VALUES (%s, %s, %s)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        (trip.id, trip.vehicle, trip.origin_site),
    )
    if await cur.fetchone() is None:
        raise Conflict(f"trip {trip.id} already exists: choose another id")
    return await get_trip(conn, trip.id)


async def list_trips(conn: AsyncConnection[Any], f: TripFilter) -> list[TripSummary]:
    if f.state and (bad := sorted(set(f.state) - set(TRIP_STATES))):
        raise Refused(f"unknown trip state {', '.join(bad)}: use {', '.join(TRIP_STATES)}")
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"{_SUMMARY} WHERE (t.state = ANY(%(state)s) OR %(state)s::text[] IS NULL)"
        " AND (t.vehicle_id = %(vehicle)s OR %(vehicle)s::text IS NULL)"
        " AND (t.origin_site = %(site)s OR %(site)s::text IS NULL)"
        " AND (t.created_at >= %(since)s OR %(since)s::timestamptz IS NULL)"
        " ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s",
        {
            "state": f.state,
            "vehicle": f.vehicle,
            "site": f.origin_site,
            "since": f.created_since,
            "limit": f.limit,
        },
    )
    return [TripSummary.model_validate(r) for r in await cur.fetchall()]


async def get_trip(conn: AsyncConnection[Any], trip_id: str) -> TripOut:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"{_SUMMARY} WHERE t.id = %s", (trip_id,))
    trip = await cur.fetchone()
    if trip is None:
        raise NotFound(f"no trip {trip_id}: GET /api/v1/trips lists them")
    await cur.execute(
        "SELECT p.id, p.sscc, o.number AS order_number, p.state, p.loaded_trip, p.loaded_at,"
        " o.state AS order_state, o.trip_id FROM packages p JOIN orders o ON o.id = p.order_id"
        " WHERE o.trip_id = %(t)s OR p.order_id IN"
        "   (SELECT order_id FROM packages WHERE loaded_trip = %(t)s)"
        " ORDER BY o.id, p.id",
        {"t": trip_id},
    )
    packages = await cur.fetchall()
    orders: dict[str, TripOrder] = {}
    for p in packages:
        o = orders.setdefault(
            p["order_number"],
            TripOrder(
                number=p["order_number"],
                state=p["order_state"],
                planned=p["trip_id"] == trip_id,
                packages=0,
                loaded=0,
            ),
        )
        o.packages += 1
        o.loaded += p["loaded_trip"] == trip_id
    return TripOut.model_validate({**trip, "orders": list(orders.values()), "packages": packages})


def plan_refusal(state: OrderState, loaded_elsewhere: str | None) -> str | None:
    """Why an order in `state` may not be planned on another trip, or None if it may."""
    if state in (OrderState.CANCELLED, OrderState.DELIVERED):
        return f"the order is {state}"
    if loaded_elsewhere is not None:
        return f"{loaded_elsewhere}: unload it there first"
    if ORDER_RANK[state] >= ORDER_RANK[OrderState.IN_TRANSIT]:
        return f"the order is {state}: it has left the warehouse"
    return None


async def plan_orders(
    conn: AsyncConnection[Any], trip_id: str, numbers: list[str], *, actor: str
) -> PlanResult:
    """Plan orders onto a trip that has not left; each change is a 'changed' history row."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT state FROM trips WHERE id = %s FOR UPDATE", (trip_id,))
    trip = await cur.fetchone()
    if trip is None:
        raise NotFound(f"no trip {trip_id}: create it with POST /api/v1/trips first")
    if trip["state"] not in OPEN_TRIP_STATES:
        raise Conflict(
            f"trip {trip_id} is {trip['state']}: plan these orders on a trip that has not left"
        )
    wanted = list(dict.fromkeys(numbers))
    await cur.execute(
        "SELECT id, number, state, trip_id FROM orders WHERE number = ANY(%s)"
        " ORDER BY id FOR UPDATE",
        (wanted,),
    )
    found = {r["number"]: r for r in await cur.fetchall()}
    await cur.execute(
        "SELECT DISTINCT ON (order_id) order_id, sscc, loaded_trip FROM packages"
        " WHERE order_id = ANY(%s) AND loaded_trip IS NOT NULL AND loaded_trip <> %s"
        " ORDER BY order_id, id",
        ([r["id"] for r in found.values()], trip_id),
    )
    elsewhere = {
        r["order_id"]: f"package {r['sscc']} is loaded on trip {r['loaded_trip']}"
        for r in await cur.fetchall()
    }
    result = PlanResult(trip=trip_id, planned=[], unchanged=[], refused=[])
    events = []
    for number in wanted:
        order = found.get(number)
        if order is None:
            reason: str | None = "no such order: check the number"
        else:
            reason = plan_refusal(OrderState(order["state"]), elsewhere.get(order["id"]))
        if reason is not None:
            result.refused.append(PlanRefusal(number=number, reason=reason))
        elif order is not None and order["trip_id"] == trip_id:
            result.unchanged.append(number)
        elif order is not None:
            result.planned.append(number)
            change = {"trip_id": {"from": order["trip_id"], "to": trip_id}}
            events.append((order["id"], actor, Jsonb(change)))
    if events:
        await cur.execute(
            "UPDATE orders SET trip_id = %s, updated_at = now(), version = version + 1"
            " WHERE id = ANY(%s)",
            (trip_id, [e[0] for e in events]),
        )
        await cur.executemany(
            "INSERT INTO order_events (order_id, kind, actor, detail)"
            " VALUES (%s, 'changed', %s, %s)",
            events,
        )
    return result
