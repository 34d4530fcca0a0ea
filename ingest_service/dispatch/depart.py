"""A trip departs: its fully loaded orders go in transit, whatever was left behind is a short
load, and its doors are freed. One transaction, the trip and its orders locked first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

from orders.dispatch import PackageOnDock, short_load
from orders.exceptions import ExceptionKind
from orders.lifecycle import Ignored, OrderState, PackageState, Trigger, order_move

from .errors import Conflict, NotFound, utc


class OrderMoved(BaseModel):
    number: str
    from_state: str
    to_state: str


class OrderStayed(BaseModel):
    number: str
    state: str
    reason: str


class ShortLoad(BaseModel):
    exception_id: int
    order_number: str
    package_sscc: str


class Departure(BaseModel):
    trip: str
    vehicle_id: str | None
    departed_at: datetime
    moved: list[OrderMoved] = Field(description="orders now in transit")
    stayed: list[OrderStayed] = Field(description="orders on the trip that did not move, why")
    short_loads: list[ShortLoad] = Field(description="planned packages left behind")
    doors_cleared: list[str] = Field(description="site/door that were loading this trip")


async def depart_trip(conn: AsyncConnection[Any], trip_id: str, *, actor: str) -> Departure:
    """Depart a trip; run inside the caller's transaction. Locks the trip, then its orders
    in id order, then their packages (the scan matcher's order), so a dock scan racing the
    departure either lands before it and counts, or after it and finds the door cleared."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT vehicle_id, state, departed_at FROM trips WHERE id = %s FOR UPDATE", (trip_id,)
    )
    trip = await cur.fetchone()
    if trip is None:
        raise NotFound(f"no trip {trip_id}: GET /api/v1/trips lists them")
    if trip["departed_at"] is not None or trip["state"] in ("departed", "completed"):
        when = f" at {utc(trip['departed_at'])}" if trip["departed_at"] else ""
        raise Conflict(f"trip {trip_id} already departed{when}: nothing to do")
    if trip["state"] == "cancelled":
        raise Conflict(f"trip {trip_id} is cancelled: it cannot depart")
    await cur.execute(
        "SELECT id, number, state, trip_id FROM orders WHERE trip_id = %(t)s"
        " OR id IN (SELECT order_id FROM packages WHERE loaded_trip = %(t)s)"
        " ORDER BY id FOR UPDATE",
        {"t": trip_id},
    )
    orders = await cur.fetchall()
    await cur.execute(
        "SELECT id, order_id, sscc, state, loaded_trip FROM packages WHERE order_id = ANY(%s)"
        " ORDER BY id FOR UPDATE",
        ([o["id"] for o in orders],),
    )
    packages_of: dict[int, list[dict[str, Any]]] = {o["id"]: [] for o in orders}
    for p in await cur.fetchall():
        packages_of[p["order_id"]].append(p)
    await cur.execute(
        "UPDATE trips SET state = 'departed', departed_at = now() WHERE id = %s"
        " RETURNING departed_at",
        (trip_id,),
    )
    departed = await cur.fetchone()
    assert departed is not None
    result = Departure(
        trip=trip_id,
        vehicle_id=trip["vehicle_id"],
        departed_at=departed["departed_at"],
        moved=[],
        stayed=[],
        short_loads=[],
        doors_cleared=[],
    )
    events = []
    for o in orders:
        packages = packages_of[o["id"]]
        loaded = sum(p["loaded_trip"] == trip_id for p in packages)
        if not packages or loaded < len(packages):
            if o["trip_id"] == trip_id and o["state"] != OrderState.CANCELLED:
                reason = f"{loaded} of {len(packages)} packages loaded on {trip_id}"
                result.stayed.append(
                    OrderStayed(number=o["number"], state=o["state"], reason=reason)
                )
            continue
        outcome = order_move(OrderState(o["state"]), Trigger.DEPARTED, OrderState.IN_TRANSIT)
        if isinstance(outcome, Ignored):
            result.stayed.append(
                OrderStayed(number=o["number"], state=o["state"], reason=outcome.reason)
            )
            continue
        result.moved.append(
            OrderMoved(number=o["number"], from_state=outcome.before, to_state=outcome.after)
        )
        detail = {"trip": trip_id, "vehicle": trip["vehicle_id"]}
        trigger = Trigger.DEPARTED.value
        events.append((o["id"], outcome.before, outcome.after, trigger, actor, Jsonb(detail)))
    if events:
        await cur.execute(
            "UPDATE orders SET state = 'in_transit', updated_at = now(), version = version + 1"
            " WHERE id = ANY(%s)",
            ([e[0] for e in events],),
        )
        await cur.executemany(
            "INSERT INTO order_events (order_id, kind, from_state, to_state, trigger, actor,"
            " detail) VALUES (%s, 'state', %s, %s, %s, %s, %s)",
            events,
        )
    await _short_loads(conn, result, orders, packages_of)
    await cur.execute(
        "UPDATE dock_doors SET trip_id = NULL, assigned_at = now(), assigned_by = %s"
        " WHERE trip_id = %s RETURNING site, door",
        (actor, trip_id),
    )
    result.doors_cleared = sorted(f"{r['site']}/{r['door']}" for r in await cur.fetchall())
    return result


async def _short_loads(
    conn: AsyncConnection[Any],
    result: Departure,
    orders: list[dict[str, Any]],
    packages_of: dict[int, list[dict[str, Any]]],
) -> None:
    """One short_load exception per planned package not loaded (the rule's dedup key)."""
    trip = result.trip
    on_dock = {}
    for o in orders:
        for p in packages_of[o["id"]]:
            view = PackageOnDock(
                sscc=p["sscc"],
                order_number=o["number"],
                order_state=OrderState(o["state"]),
                planned_trip=o["trip_id"],
                loaded_trip=p["loaded_trip"],
                state=PackageState(p["state"]),
            )
            on_dock[view] = (o["id"], p["id"])
    short = short_load(on_dock, trip)
    if not short:
        return
    rows = []
    for view in short:
        order_id, package_id = on_dock[view]
        where = f"on trip {view.loaded_trip}" if view.loaded_trip else "not loaded"
        summary = (
            f"trip {trip} departed without package {view.sscc} of order {view.order_number}"
            f" ({where}): find it and plan it on another trip"
        )
        rows.append(
            (ExceptionKind.SHORT_LOAD, summary, order_id, package_id, result.vehicle_id, trip,
             f"rule:{ExceptionKind.SHORT_LOAD}", f"short_load:{trip}:{package_id}")
        )  # fmt: skip
    async with conn.cursor() as c:
        await c.executemany(
            "INSERT INTO exceptions (kind, summary, order_id, package_id, vehicle_id, trip_id,"
            " opened_by, dedup_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (dedup_key) DO NOTHING",
            rows,
        )
        await c.execute(
            "SELECT id, dedup_key FROM exceptions WHERE dedup_key = ANY(%s)",
            ([r[-1] for r in rows],),
        )
        ids = dict((key, i) for i, key in await c.fetchall())
    result.short_loads = [
        ShortLoad(exception_id=ids[row[-1]], order_number=view.order_number, package_sscc=view.sscc)
        for view, row in zip(short, rows, strict=True)
    ]
