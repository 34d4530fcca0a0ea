"""Vehicles, and dock doors: which trip (and so which truck) each dispatch door is loading."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from orders.models import Ref, ShortText

from .errors import Conflict, NotFound, Refused

# Trips a door may load and a vehicle may be busy with; the others have left or are off.
OPEN_TRIP_STATES = ("planned", "loading")
Plate = Annotated[str, Field(min_length=1, max_length=32)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class VehicleIn(_Input):
    id: Ref
    name: ShortText
    plate: Plate | None = None


class VehiclePatch(_Input):
    """Fields left out stay as they are; `active: true` brings a vehicle back."""

    name: ShortText | None = None
    plate: Plate | None = None
    active: bool | None = None


class VehicleOut(BaseModel):
    id: str
    name: str
    plate: str | None
    active: bool
    open_trips: list[str] = Field(description="trips planned or loading on this vehicle")


class DoorAssign(_Input):
    trip: Ref | None = Field(description="the trip to load at this door; null clears the door")


class DoorOutcome(BaseModel):
    event_id: UUID
    decided_at: datetime
    match_kind: str
    verdict: str
    message: str
    order_number: str | None
    package_sscc: str | None
    code: str | None = Field(None, description="the code as scanned (barcode or EPC)")


class DoorOut(BaseModel):
    site: str
    door: str
    trip_id: str | None
    trip_state: str | None
    vehicle_id: str | None
    vehicle_name: str | None
    assigned_at: datetime | None
    assigned_by: str | None
    recent: list[DoorOutcome] = Field(description="the last scans judged here, newest first")


_VEHICLE = (
    "SELECT v.id, v.name, v.plate, v.active, COALESCE((SELECT array_agg(t.id ORDER BY t.id)"
    " FROM trips t WHERE t.vehicle_id = v.id AND t.state = ANY(%s)), '{}') AS open_trips"
    " FROM vehicles v"
)


async def list_vehicles(
    conn: AsyncConnection[Any], *, include_inactive: bool = False
) -> list[VehicleOut]:
    cur = conn.cursor(row_factory=dict_row)
    where = "" if include_inactive else " WHERE v.active"
    await cur.execute(f"{_VEHICLE}{where} ORDER BY v.id", (list(OPEN_TRIP_STATES),))
    return [VehicleOut.model_validate(r) for r in await cur.fetchall()]


async def get_vehicle(conn: AsyncConnection[Any], vehicle_id: str) -> VehicleOut:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"{_VEHICLE} WHERE v.id = %s", (list(OPEN_TRIP_STATES), vehicle_id))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no vehicle {vehicle_id}: GET /api/v1/vehicles lists them")
    return VehicleOut.model_validate(row)


async def create_vehicle(conn: AsyncConnection[Any], v: VehicleIn) -> VehicleOut:
    cur = await conn.execute(
        "INSERT INTO vehicles (id, name, plate) VALUES (%s, %s, %s)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        (v.id, v.name, v.plate),
    )
    if await cur.fetchone() is None:
        raise Conflict(
            f"vehicle {v.id} already exists: change it with PATCH /api/v1/vehicles/{v.id}"
        )
    return await get_vehicle(conn, v.id)


async def update_vehicle(
    conn: AsyncConnection[Any], vehicle_id: str, patch: VehiclePatch
) -> VehicleOut:
    sets = {f: getattr(patch, f) for f in patch.model_fields_set}
    if any(sets.get(f, "given") is None for f in ("name", "active")):
        raise Refused("name and active cannot be null: leave a field out to keep it")
    if sets.get("active") is False:
        await deactivate_vehicle(conn, vehicle_id)  # refused while a trip still needs it
        del sets["active"]
    current = await get_vehicle(conn, vehicle_id)
    if not sets:
        return current
    assignments = ", ".join(f"{column} = %s" for column in sets)
    await conn.execute(
        f"UPDATE vehicles SET {assignments} WHERE id = %s",  # noqa: S608 (columns are ours)
        (*sets.values(), vehicle_id),
    )
    return await get_vehicle(conn, vehicle_id)


async def deactivate_vehicle(conn: AsyncConnection[Any], vehicle_id: str) -> VehicleOut:
    """Take a vehicle out of service; refused while a trip that has not left still uses it."""
    await conn.execute("SELECT 1 FROM vehicles WHERE id = %s FOR UPDATE", (vehicle_id,))
    vehicle = await get_vehicle(conn, vehicle_id)
    if vehicle.open_trips:
        raise Conflict(
            f"vehicle {vehicle_id} is on trip {', '.join(vehicle.open_trips)}, which has not"
            " departed: depart it first, or plan those orders on a trip with another vehicle"
        )
    await conn.execute("UPDATE vehicles SET active = false WHERE id = %s", (vehicle_id,))
    return vehicle.model_copy(update={"active": False})


async def assign_door(
    conn: AsyncConnection[Any], site: str, door: str, trip: str | None, *, actor: str
) -> DoorOut:
    """Point a door at a trip (a planned trip starts loading) or clear it; who and when kept."""
    if trip is not None:
        cur = await conn.execute("SELECT state FROM trips WHERE id = %s FOR UPDATE", (trip,))
        row = await cur.fetchone()
        if row is None:
            raise Refused(f"no trip {trip}: create it with POST /api/v1/trips first")
        if row[0] not in OPEN_TRIP_STATES:
            raise Conflict(
                f"trip {trip} is {row[0]}: a door can only load a trip that is planned or"
                " loading; create a new trip for the next load"
            )
        await conn.execute(
            "UPDATE trips SET state = 'loading' WHERE id = %s AND state = 'planned'", (trip,)
        )
    await conn.execute(
        "INSERT INTO dock_doors (site, door, trip_id, assigned_at, assigned_by)"
        " VALUES (%s, %s, %s, now(), %s) ON CONFLICT (site, door) DO UPDATE"
        " SET trip_id = EXCLUDED.trip_id, assigned_at = now(), assigned_by = EXCLUDED.assigned_by",
        (site, door, trip, actor),
    )
    (found,) = await list_doors(conn, site=site, door=door)
    return found


async def list_doors(
    conn: AsyncConnection[Any],
    *,
    site: str | None = None,
    door: str | None = None,
    recent: int = 5,
) -> list[DoorOut]:
    """Doors with their trip, vehicle and last `recent` scan outcomes. Asked for one door
    that was never assigned but has been scanned at, it is shown with no trip, so the dock
    screen shows what was refused there."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT d.site, d.door, d.trip_id, t.state AS trip_state, t.vehicle_id,"
        " v.name AS vehicle_name, d.assigned_at, d.assigned_by FROM dock_doors d"
        " LEFT JOIN trips t ON t.id = d.trip_id LEFT JOIN vehicles v ON v.id = t.vehicle_id"
        " WHERE (d.site = %(site)s OR %(site)s::text IS NULL)"
        " AND (d.door = %(door)s OR %(door)s::text IS NULL) ORDER BY d.site, d.door",
        {"site": site, "door": door},
    )
    rows = await cur.fetchall()
    if not rows and site is not None and door is not None:
        await cur.execute(
            "SELECT 1 FROM scan_outcomes WHERE site = %s AND door = %s LIMIT 1", (site, door)
        )
        if await cur.fetchone() is not None:
            empty = dict.fromkeys(DoorOut.model_fields, None)
            rows = [{**empty, "site": site, "door": door}]
    doors = {(r["site"], r["door"]): {**r, "recent": []} for r in rows}
    if doors and recent > 0:
        await cur.execute(
            "SELECT k.site, k.door, x.* FROM unnest(%s::text[], %s::text[]) AS k (site, door)"
            " CROSS JOIN LATERAL (SELECT o.event_id, o.decided_at, o.match_kind, o.verdict,"
            "   o.message, ord.number AS order_number, p.sscc AS package_sscc,"
            "   (SELECT s.code FROM scans s WHERE s.event_id = o.event_id LIMIT 1) AS code"
            "   FROM scan_outcomes o LEFT JOIN orders ord ON ord.id = o.order_id"
            "   LEFT JOIN packages p ON p.id = o.package_id"
            "   WHERE o.site = k.site AND o.door = k.door"
            "   ORDER BY o.decided_at DESC, o.event_id DESC LIMIT %s) x",
            ([s for s, _ in doors], [d for _, d in doors], recent),
        )
        for r in await cur.fetchall():
            doors[(r.pop("site"), r.pop("door"))]["recent"].append(r)
    return [DoorOut.model_validate(d) for d in doors.values()]


class TrackerAssign(_Input):
    vehicle: Ref = Field(description="the vehicle this GNSS device reports for")


class TrackerOut(BaseModel):
    site: str
    gateway: str
    device: str
    vehicle_id: str
    vehicle_name: str
    assigned_at: datetime
    assigned_by: str


_TRACKER = (
    "SELECT k.site, k.gateway, k.device, k.vehicle_id, v.name AS vehicle_name, k.assigned_at,"
    " k.assigned_by FROM trackers k JOIN vehicles v ON v.id = k.vehicle_id"
)


async def list_trackers(
    conn: AsyncConnection[Any], *, vehicle: str | None = None, site: str | None = None
) -> list[TrackerOut]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"{_TRACKER} WHERE (k.vehicle_id = %(v)s OR %(v)s::text IS NULL)"
        " AND (k.site = %(s)s OR %(s)s::text IS NULL) ORDER BY k.site, k.gateway, k.device",
        {"v": vehicle, "s": site},
    )
    return [TrackerOut.model_validate(r) for r in await cur.fetchall()]


async def assign_tracker(
    conn: AsyncConnection[Any], site: str, gateway: str, device: str, vehicle: str, *, actor: str
) -> TrackerOut:
    """From now on this device's positions are the vehicle's; who and when are kept."""
    cur = await conn.execute("SELECT active FROM vehicles WHERE id = %s", (vehicle,))
    row = await cur.fetchone()
    if row is None:
        raise Refused(f"no vehicle {vehicle}: create it with POST /api/v1/vehicles first")
    if not row[0]:
        raise Refused(
            f"vehicle {vehicle} is out of service: reactivate it with PATCH"
            f" /api/v1/vehicles/{vehicle} first"
        )
    await conn.execute(
        "INSERT INTO trackers (site, gateway, device, vehicle_id, assigned_by)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (site, gateway, device) DO UPDATE"
        " SET vehicle_id = EXCLUDED.vehicle_id, assigned_at = now(),"
        " assigned_by = EXCLUDED.assigned_by",
        (site, gateway, device, vehicle, actor),
    )
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"{_TRACKER} WHERE k.site = %s AND k.gateway = %s AND k.device = %s",
        (site, gateway, device),
    )
    return TrackerOut.model_validate(await cur.fetchone())


async def unassign_tracker(
    conn: AsyncConnection[Any], site: str, gateway: str, device: str
) -> None:
    """The device no longer reports for any vehicle."""
    cur = await conn.execute(
        "DELETE FROM trackers WHERE site = %s AND gateway = %s AND device = %s RETURNING 1",
        (site, gateway, device),
    )
    if await cur.fetchone() is None:
        raise NotFound(
            f"device {device} of gateway {gateway} at {site} is not assigned to a vehicle:"
            " GET /api/v1/trackers lists the assigned ones"
        )
