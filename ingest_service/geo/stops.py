"""A trip's stops: where it delivers which orders, in order, fixed before it leaves.

A stop's fence is its orders' destination fence (they must share it) or one given by id.
Setting the stops plans the orders on the trip (`orders.trip_id`) with their `stop_seq`;
the trip's orders left out of every stop stay planned on it without a stop.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from ingest_service.dispatch.errors import Conflict, NotFound, Refused
from ingest_service.dispatch.fleet import OPEN_TRIP_STATES
from ingest_service.dispatch.trips import loaded_elsewhere, plan_refusal
from ingest_service.geo.fences import usable_fence
from orders.lifecycle import OrderState
from orders.models import Ref

MAX_STOPS = 500


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    orders: list[Ref] = Field(default_factory=list, max_length=1000, description="order numbers")
    fence_id: int | None = Field(
        None, description="where to stop; default: the orders' shared destination fence"
    )


class StopsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stops: list[StopIn] = Field(max_length=MAX_STOPS, description="in the order driven")


async def _lock_trip(conn: AsyncConnection[Any], trip_id: str) -> None:
    cur = await conn.execute("SELECT state FROM trips WHERE id = %s FOR UPDATE", (trip_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no trip {trip_id}: create it with POST /api/v1/trips first")
    if row[0] not in OPEN_TRIP_STATES:
        raise Conflict(
            f"trip {trip_id} is {row[0]}: its stops were fixed when it left; plan a new trip"
            " for orders it does not carry"
        )


async def _orders(conn: AsyncConnection[Any], trip_id: str, numbers: list[str]) -> dict[str, Any]:
    """The named orders, locked; refused if one is unknown or cannot go on this trip."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, number, state, trip_id, stop_seq, dest_fence_id FROM orders"
        " WHERE number = ANY(%s) ORDER BY id FOR UPDATE",
        (numbers,),
    )
    found = {r["number"]: r for r in await cur.fetchall()}
    if missing := [n for n in numbers if n not in found]:
        raise Refused(f"no order {', '.join(missing)}: check the numbers")
    elsewhere = await loaded_elsewhere(conn, [r["id"] for r in found.values()], trip_id)
    refusals = []
    for number, o in found.items():
        reason = plan_refusal(OrderState(o["state"]), elsewhere.get(o["id"]))
        if reason is not None and o["trip_id"] != trip_id:
            refusals.append(f"{number}: {reason}")
    if refusals:
        raise Refused(f"these orders cannot go on trip {trip_id}: {'; '.join(refusals)}")
    return found


async def _fence_of(
    conn: AsyncConnection[Any], trip_id: str, seq: int, stop: StopIn, orders: dict[str, Any]
) -> int:
    what = f"trip {trip_id}, stop {seq}"
    if stop.fence_id is not None:
        await usable_fence(conn, stop.fence_id, what=what)
        return stop.fence_id
    if not stop.orders:
        raise Refused(f"{what} has neither orders nor a fence_id: give it one or drop it")
    fences = {n: orders[n]["dest_fence_id"] for n in stop.orders}
    if none := [n for n, f in fences.items() if f is None]:
        raise Refused(
            f"{what}: order {', '.join(none)} has no destination fence (no lat/lon):"
            " give the stop a fence_id"
        )
    if len(set(fences.values())) > 1:
        listed = ", ".join(f"{n} (fence {f})" for n, f in fences.items())
        raise Refused(
            f"{what}: its orders go to different places: {listed}; split them into one stop"
            " per fence, or give the stop a fence_id"
        )
    fence_id = next(iter(fences.values()))
    await usable_fence(conn, fence_id, what=what)
    return int(fence_id)


async def set_stops(conn: AsyncConnection[Any], trip_id: str, body: StopsIn, *, actor: str) -> None:
    """Replace the stops of a trip that has not left; each order change is kept in its
    history."""
    await _lock_trip(conn, trip_id)
    seq_of: dict[str, int] = {}
    for seq, stop in enumerate(body.stops, start=1):
        for number in stop.orders:
            if number in seq_of:
                raise Refused(
                    f"order {number} is in stop {seq_of[number]} and stop {seq}: an order is"
                    " delivered at one stop"
                )
            seq_of[number] = seq
    orders = await _orders(conn, trip_id, list(seq_of))
    fences = [await _fence_of(conn, trip_id, seq, s, orders) for seq, s in enumerate(body.stops, 1)]
    cur = conn.cursor(row_factory=dict_row)
    # The trip's other orders keep their plan but lose a stop that is no longer there.
    await cur.execute(
        "SELECT id, number, trip_id, stop_seq FROM orders WHERE trip_id = %s"
        " AND stop_seq IS NOT NULL AND NOT (number = ANY(%s)) ORDER BY id FOR UPDATE",
        (trip_id, list(seq_of)),
    )
    changes: list[tuple[int, str | None, int | None, dict[str, Any]]] = []
    for o in await cur.fetchall():
        changes.append((o["id"], trip_id, None, {"stop_seq": {"from": o["stop_seq"], "to": None}}))
    for number, seq in seq_of.items():
        o, change = orders[number], {}
        if o["trip_id"] != trip_id:
            change["trip_id"] = {"from": o["trip_id"], "to": trip_id}
        if o["stop_seq"] != seq or o["trip_id"] != trip_id:
            change["stop_seq"] = {"from": o["stop_seq"], "to": seq}
        if change:
            changes.append((o["id"], trip_id, seq, change))
    await cur.execute("DELETE FROM trip_stops WHERE trip_id = %s", (trip_id,))
    await cur.executemany(
        "INSERT INTO trip_stops (trip_id, seq, fence_id) VALUES (%s, %s, %s)",
        [(trip_id, seq, fence) for seq, fence in enumerate(fences, start=1)],
    )
    if changes:
        await cur.executemany(
            "UPDATE orders SET trip_id = %s, stop_seq = %s, updated_at = now(),"
            " version = version + 1 WHERE id = %s",
            [(trip, seq, order_id) for order_id, trip, seq, _ in changes],
        )
        await cur.executemany(
            "INSERT INTO order_events (order_id, kind, actor, detail)"
            " VALUES (%s, 'changed', %s, %s)",
            [(order_id, actor, Jsonb(change)) for order_id, _, _, change in changes],
        )
