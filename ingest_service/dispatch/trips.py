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

from geofence import FenceKind
from ingest_service.geo.fences import active_site_fence, usable_fence
from ingest_service.geo.routes import RouteLine, StopOut, read_stops
from orders.lifecycle import ORDER_RANK, OrderState
from orders.models import Ref, ShortText

from .errors import Conflict, NotFound, Refused
from .fleet import OPEN_TRIP_STATES

TRIP_STATES = ("planned", "loading", "departed", "completed", "cancelled")
ORIGINS = (FenceKind.WAREHOUSE, FenceKind.DEPOT)  # the fence kinds a trip may leave from


class TripIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Ref
    vehicle: Ref | None = Field(None, description="an active vehicle; may be set later")
    origin_site: Ref
    driver: ShortText | None = Field(
        None, description="the driver's username: that driver user confirms its deliveries"
    )
    route: RouteLine | None = None
    origin_fence_id: int | None = Field(
        None, description="default: the active warehouse fence of origin_site, if one is drawn"
    )


class TripPatch(BaseModel):
    """Fields left out stay as they are; null clears vehicle, driver or route."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    vehicle: Ref | None = None
    driver: ShortText | None = None
    route: RouteLine | None = None
    origin_fence_id: int | None = None


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
    driver: str | None
    origin_fence_id: int | None
    departed_at: datetime | None
    completed_at: datetime | None
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
    route: dict[str, Any] | None = Field(description="the planned route, a GeoJSON LineString")
    stops: list[StopOut] = Field(description="in order, with their state and ETA")
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
    "SELECT t.id, t.vehicle_id, t.origin_site, t.state, t.driver, t.origin_fence_id,"
    " t.departed_at, t.completed_at, t.created_at,"
    " (SELECT count(*) FROM orders o WHERE o.trip_id = t.id AND o.state <> 'cancelled')"
    "   AS orders_planned,"
    " (SELECT count(*) FROM packages p JOIN orders o ON o.id = p.order_id"
    "   WHERE o.trip_id = t.id AND o.state <> 'cancelled') AS packages_planned,"
    " (SELECT count(*) FROM packages p WHERE p.loaded_trip = t.id) AS packages_loaded"
    " FROM trips t"
)


async def _check_vehicle(conn: AsyncConnection[Any], vehicle: str) -> None:
    cur = await conn.execute("SELECT active FROM vehicles WHERE id = %s", (vehicle,))
    row = await cur.fetchone()
    if row is None:
        raise Refused(f"no vehicle {vehicle}: add it with POST /api/v1/vehicles first")
    if not row[0]:
        raise Refused(
            f"vehicle {vehicle} is out of service: reactivate it with PATCH"
            f" /api/v1/vehicles/{vehicle} or pick another"
        )


def _route(route: RouteLine | None) -> Jsonb | None:
    return None if route is None else Jsonb(route.model_dump(exclude_none=True))


async def create_trip(conn: AsyncConnection[Any], trip: TripIn) -> TripOut:
    if trip.vehicle is not None:
        await _check_vehicle(conn, trip.vehicle)
    origin_fence = trip.origin_fence_id
    if origin_fence is not None:
        await usable_fence(conn, origin_fence, what=f"trip {trip.id}'s origin", kinds=ORIGINS)
    else:
        origin_fence = await active_site_fence(conn, trip.origin_site)
    cur = await conn.execute(
        "INSERT INTO trips (id, vehicle_id, origin_site, driver, route, origin_fence_id)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
        (trip.id, trip.vehicle, trip.origin_site, trip.driver, _route(trip.route), origin_fence),
    )
    if await cur.fetchone() is None:
        raise Conflict(f"trip {trip.id} already exists: choose another id")
    return await get_trip(conn, trip.id)


async def update_trip(conn: AsyncConnection[Any], trip_id: str, patch: TripPatch) -> TripOut:
    """Change vehicle, driver, route or origin fence of a trip that has not left."""
    cur = await conn.execute("SELECT state FROM trips WHERE id = %s FOR UPDATE", (trip_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no trip {trip_id}: GET /api/v1/trips lists them")
    if row[0] not in OPEN_TRIP_STATES:
        raise Conflict(f"trip {trip_id} is {row[0]}: only a trip that has not left can change")
    sets: dict[str, Any] = {}
    fields = patch.model_fields_set
    if "vehicle" in fields:
        if patch.vehicle is not None:
            await _check_vehicle(conn, patch.vehicle)
        sets["vehicle_id"] = patch.vehicle
    if "driver" in fields:
        sets["driver"] = patch.driver
    if "route" in fields:
        sets["route"] = _route(patch.route)
    if "origin_fence_id" in fields:
        if patch.origin_fence_id is not None:
            what = f"trip {trip_id}'s origin"
            await usable_fence(conn, patch.origin_fence_id, what=what, kinds=ORIGINS)
        sets["origin_fence_id"] = patch.origin_fence_id
    if sets:
        assignments = ", ".join(f"{column} = %s" for column in sets)
        await conn.execute(
            f"UPDATE trips SET {assignments} WHERE id = %s",  # noqa: S608 (columns are ours)
            (*sets.values(), trip_id),
        )
    return await get_trip(conn, trip_id)


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
    await cur.execute("SELECT route FROM trips WHERE id = %s", (trip_id,))
    route = await cur.fetchone()
    return TripOut.model_validate(
        {
            **trip,
            "route": route and route["route"],
            "stops": await read_stops(conn, trip_id),
            "orders": list(orders.values()),
            "packages": packages,
        }
    )


def plan_refusal(state: OrderState, loaded_elsewhere: str | None) -> str | None:
    """Why an order in `state` may not be planned on another trip, or None if it may."""
    if state in (OrderState.CANCELLED, OrderState.DELIVERED):
        return f"the order is {state}"
    if loaded_elsewhere is not None:
        return f"{loaded_elsewhere}: unload it there first"
    if ORDER_RANK[state] >= ORDER_RANK[OrderState.IN_TRANSIT]:
        return f"the order is {state}: it has left the warehouse"
    return None


async def loaded_elsewhere(
    conn: AsyncConnection[Any], order_ids: list[int], trip_id: str
) -> dict[int, str]:
    """Order id -> why it is on another trip already (one of its packages is loaded there),
    for the orders of `order_ids` that are; `plan_refusal` turns it into the refusal."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (order_id) order_id, sscc, loaded_trip FROM packages"
        " WHERE order_id = ANY(%s) AND loaded_trip IS NOT NULL AND loaded_trip <> %s"
        " ORDER BY order_id, id",
        (order_ids, trip_id),
    )
    return {
        oid: f"package {sscc} is loaded on trip {trip}" for oid, sscc, trip in await cur.fetchall()
    }


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
        "SELECT id, number, state, trip_id, stop_seq FROM orders WHERE number = ANY(%s)"
        " ORDER BY id FOR UPDATE",
        (wanted,),
    )
    found = {r["number"]: r for r in await cur.fetchall()}
    elsewhere = await loaded_elsewhere(conn, [r["id"] for r in found.values()], trip_id)
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
            change: dict[str, Any] = {"trip_id": {"from": order["trip_id"], "to": trip_id}}
            if order["stop_seq"] is not None:
                change["stop_seq"] = {"from": order["stop_seq"], "to": None}
            events.append((order["id"], actor, Jsonb(change)))
    if events:
        await cur.execute(
            "UPDATE orders SET trip_id = %s, stop_seq = NULL, updated_at = now(),"
            " version = version + 1 WHERE id = ANY(%s)",
            (trip_id, [e[0] for e in events]),
        )
        await cur.executemany(
            "INSERT INTO order_events (order_id, kind, actor, detail)"
            " VALUES (%s, 'changed', %s, %s)",
            events,
        )
    return result
