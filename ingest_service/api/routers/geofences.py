"""Geofences: warehouses, depots, customer sites and zones, drawn as GeoJSON."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from ingest_service.auth import CurrentUser, PoolDep, Role, requires
from ingest_service.dispatch.errors import as_http
from ingest_service.geo.fences import (
    FeatureCollection,
    FenceFilter,
    FenceOut,
    FencePatch,
    as_collection,
    create_fence,
    deactivate_fence,
    get_fence,
    list_fences,
    update_fence,
)

router = APIRouter(prefix="/geofences", tags=["geofences"])
READERS = requires(Role.DISPATCHER, Role.DOCK, Role.VIEWER, Role.DRIVER)
MANAGERS = requires(Role.DISPATCHER)
Repair = Annotated[
    bool,
    Query(description="split an invalid (self-touching) polygon into valid parts, not refuse it"),
]
EXAMPLE = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [13.4, 52.5]},
    "properties": {"name": "Warehouse 1", "kind": "warehouse", "site": "wh1", "radius_m": 200},
}


class Deactivate(BaseModel):
    version: int = Field(ge=1, description="the version you read; refused if it changed")


@router.get("", dependencies=[Depends(READERS)])
async def fences(
    pool: PoolDep, filters: Annotated[FenceFilter, Query()]
) -> list[FenceOut] | FeatureCollection:
    """Fences, newest first, filtered by kind and site; active ones unless `active=false`.
    With `format=geojson`, one FeatureCollection."""
    async with pool.connection() as conn:
        found = await list_fences(conn, filters)
    return as_collection(found) if filters.format == "geojson" else found


@router.post("", status_code=201, dependencies=[Depends(MANAGERS)])
async def new_fence(
    feature: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
    pool: PoolDep,
    user: CurrentUser,
    repair: Repair = False,
) -> FenceOut:
    """Create a fence from a GeoJSON Feature: a Polygon, a MultiPolygon, or a Point with
    `properties.radius_m` for a circle; `properties` also hold `name`, `kind` (warehouse,
    depot, customer_site, restricted_zone, route_corridor) and, for a warehouse or depot,
    `site`. A shape that cannot be a fence is a 422 saying why."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await create_fence(conn, feature, actor=user.username, repair=repair)


@router.get("/{fence_id}", dependencies=[Depends(READERS)])
async def one_fence(fence_id: int, pool: PoolDep) -> FenceOut:
    async with pool.connection() as conn:
        with as_http():
            return await get_fence(conn, fence_id)


@router.patch("/{fence_id}", dependencies=[Depends(MANAGERS)])
async def change_fence(
    fence_id: int, patch: FencePatch, pool: PoolDep, repair: Repair = False
) -> FenceOut:
    """Rename it or redraw it (`feature`: the new GeoJSON Feature); send the `version` you
    read. Its kind stays."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await update_fence(conn, fence_id, patch, repair=repair)


@router.post("/{fence_id}/deactivate", dependencies=[Depends(MANAGERS)])
async def deactivate(fence_id: int, body: Deactivate, pool: PoolDep) -> FenceOut:
    """Take a fence out of use (refused while a trip that has not finished stops in it)."""
    async with pool.connection() as conn, conn.transaction():
        with as_http():
            return await deactivate_fence(conn, fence_id, body.version)
