"""Trips: create, read with their stops, orders and packages, plan orders and stops onto
them, depart."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ingest_service.auth import CurrentUser, PoolDep, Role, requires
from ingest_service.dispatch.depart import Departure, depart_trip
from ingest_service.dispatch.errors import as_http
from ingest_service.dispatch.trips import (
    PlanIn,
    PlanResult,
    TripFilter,
    TripIn,
    TripOut,
    TripPatch,
    TripSummary,
    create_trip,
    get_trip,
    list_trips,
    plan_orders,
    update_trip,
)
from ingest_service.geo.stops import StopsIn, set_stops

router = APIRouter(prefix="/trips", tags=["trips"])
READERS = requires(Role.DISPATCHER, Role.DOCK, Role.VIEWER)
MANAGERS = requires(Role.DISPATCHER)


@router.get("", dependencies=[Depends(READERS)])
async def trips(pool: PoolDep, filters: Annotated[TripFilter, Query()]) -> list[TripSummary]:
    """Trips, newest first, with how many orders and packages are planned and loaded."""
    async with pool.connection() as conn:
        with as_http():
            return await list_trips(conn, filters)


@router.post("", status_code=201, dependencies=[Depends(MANAGERS)])
async def new_trip(trip: TripIn, pool: PoolDep) -> TripOut:
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await create_trip(conn, trip)


@router.get("/{trip_id}", dependencies=[Depends(READERS)])
async def one_trip(trip_id: str, pool: PoolDep) -> TripOut:
    """A trip with its stops (state and ETA) and every order and package planned on it or
    loaded on it."""
    async with pool.connection() as conn:
        with as_http():
            return await get_trip(conn, trip_id)


@router.patch("/{trip_id}", dependencies=[Depends(MANAGERS)])
async def change_trip(trip_id: str, patch: TripPatch, pool: PoolDep) -> TripOut:
    """Change vehicle, driver, route (a GeoJSON LineString) or origin fence before it
    leaves."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await update_trip(conn, trip_id, patch)


@router.put("/{trip_id}/stops", dependencies=[Depends(MANAGERS)])
async def stops(trip_id: str, body: StopsIn, pool: PoolDep, user: CurrentUser) -> TripOut:
    """Set the stops in the order driven, each with its orders (all going to one
    destination fence) or an explicit `fence_id`. The orders are planned on the trip with
    their stop; the trip's other orders keep no stop. Refused once the trip has left."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            await set_stops(conn, trip_id, body, actor=user.username)
            return await get_trip(conn, trip_id)


@router.post("/{trip_id}/orders", dependencies=[Depends(MANAGERS)])
async def plan(trip_id: str, body: PlanIn, pool: PoolDep, user: CurrentUser) -> PlanResult:
    """Plan orders onto a trip that has not left. Orders that cannot go (cancelled,
    delivered, already loaded elsewhere) are listed under `refused` with the reason; the
    others are planned, each change kept in the order's history."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await plan_orders(conn, trip_id, body.orders, actor=user.username)


@router.post("/{trip_id}/depart", dependencies=[Depends(MANAGERS)])
async def depart(trip_id: str, pool: PoolDep, user: CurrentUser) -> Departure:
    """The trip leaves: orders whose packages are all loaded on it go in transit, every
    planned package not loaded opens a short_load exception, its doors are cleared. 409 if
    it already departed."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await depart_trip(conn, trip_id, actor=user.username)
