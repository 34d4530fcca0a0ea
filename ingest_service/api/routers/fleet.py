"""Vehicles, dock doors and trackers: the trucks, which trip each dispatch door is loading,
and which GNSS device reports for which truck."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status

from ingest_service.auth import CurrentUser, PoolDep, Role, requires
from ingest_service.dispatch.errors import as_http
from ingest_service.dispatch.fleet import (
    DoorAssign,
    DoorOut,
    TrackerAssign,
    TrackerOut,
    VehicleIn,
    VehicleOut,
    VehiclePatch,
    assign_door,
    assign_tracker,
    create_vehicle,
    deactivate_vehicle,
    get_vehicle,
    list_doors,
    list_trackers,
    list_vehicles,
    unassign_tracker,
    update_vehicle,
)

router = APIRouter(tags=["fleet"])
READERS = requires(Role.DISPATCHER, Role.DOCK, Role.VIEWER)
MANAGERS = requires(Role.DISPATCHER)
Recent = Annotated[int, Query(ge=0, le=100, description="scan outcomes per door")]


@router.get("/vehicles", dependencies=[Depends(READERS)])
async def vehicles(pool: PoolDep, include_inactive: bool = False) -> list[VehicleOut]:
    """Vehicles in service (all with `include_inactive`), with the trips they have not
    finished."""
    async with pool.connection() as conn:
        return await list_vehicles(conn, include_inactive=include_inactive)


@router.post("/vehicles", status_code=201, dependencies=[Depends(MANAGERS)])
async def new_vehicle(vehicle: VehicleIn, pool: PoolDep) -> VehicleOut:
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await create_vehicle(conn, vehicle)


@router.get("/vehicles/{vehicle_id}", dependencies=[Depends(READERS)])
async def one_vehicle(vehicle_id: str, pool: PoolDep) -> VehicleOut:
    async with pool.connection() as conn:
        with as_http():
            return await get_vehicle(conn, vehicle_id)


@router.patch("/vehicles/{vehicle_id}", dependencies=[Depends(MANAGERS)])
async def change_vehicle(vehicle_id: str, patch: VehiclePatch, pool: PoolDep) -> VehicleOut:
    """Change name or plate; `active` false takes it out of service, true brings it back."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await update_vehicle(conn, vehicle_id, patch)


@router.post("/vehicles/{vehicle_id}/deactivate", dependencies=[Depends(MANAGERS)])
async def deactivate(vehicle_id: str, pool: PoolDep) -> VehicleOut:
    """Take a vehicle out of service (refused while a trip that has not left uses it)."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await deactivate_vehicle(conn, vehicle_id)


@router.get("/docks", dependencies=[Depends(READERS)])
async def docks(pool: PoolDep, site: str | None = None, recent: Recent = 5) -> list[DoorOut]:
    """Dock doors with their trip, vehicle, and the last scans judged there."""
    async with pool.connection() as conn:
        return await list_doors(conn, site=site, recent=recent)


@router.get("/docks/{site}/{door}", dependencies=[Depends(READERS)])
async def dock(site: str, door: str, pool: PoolDep, recent: Recent = 10) -> DoorOut:
    """One door, as the dock screen shows it."""
    async with pool.connection() as conn:
        found = await list_doors(conn, site=site, door=door, recent=recent)
    if not found:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no door {door} at {site}: assign it a trip with PUT /api/v1/docks/{site}/{door}",
        )
    return found[0]


@router.put("/docks/{site}/{door}", dependencies=[Depends(MANAGERS)])
async def assign(
    site: str, door: str, body: DoorAssign, pool: PoolDep, user: CurrentUser
) -> DoorOut:
    """Load a trip (and so its vehicle) at this door, or clear it with `trip: null`. A
    planned trip starts loading; packages scanned here are judged against it."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await assign_door(conn, site, door, body.trip, actor=user.username)


@router.get("/trackers", dependencies=[Depends(READERS)])
async def trackers(
    pool: PoolDep, vehicle: str | None = None, site: str | None = None
) -> list[TrackerOut]:
    """GNSS devices and the vehicle each reports for."""
    async with pool.connection() as conn:
        return await list_trackers(conn, vehicle=vehicle, site=site)


@router.put("/trackers/{site}/{gateway}/{device}", dependencies=[Depends(MANAGERS)])
async def assign_gnss(
    site: str, gateway: str, device: str, body: TrackerAssign, pool: PoolDep, user: CurrentUser
) -> TrackerOut:
    """This device's positions are now the vehicle's (one vehicle per device; a vehicle may
    carry several)."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await assign_tracker(
                conn, site, gateway, device, body.vehicle, actor=user.username
            )


@router.delete(
    "/trackers/{site}/{gateway}/{device}", status_code=204, dependencies=[Depends(MANAGERS)]
)
async def unassign_gnss(site: str, gateway: str, device: str, pool: PoolDep) -> None:
    """The device no longer reports for a vehicle."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            await unassign_tracker(conn, site, gateway, device)
