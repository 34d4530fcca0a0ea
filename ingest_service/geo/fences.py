"""Geofences: create them from GeoJSON, find them, redraw them, take them out of use.

A fence is stored as the Feature `geofence.shapes.fence_to_geojson` writes, with its row id
(as text) for the Feature's id, so `fence_from_geojson(row["feature"])` reads it back as
it was validated. Name and site ride along in its properties, which the shape reader
ignores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from geofence import Fence, FenceError, FenceKind, circle_fence, fence_from_geojson
from geofence.shapes import fence_to_geojson
from ingest_service.dispatch.errors import Conflict, NotFound, Refused
from orders.models import ShortText

# Trips whose stops still need their fences: they have not finished.
ACTIVE_TRIP_STATES = ("planned", "loading", "departed")


class FenceFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FenceKind | None = None
    site: str | None = None
    active: bool = Field(True, description="false lists the deactivated fences")
    limit: int = Field(1000, ge=1, le=10_000, description="newest first")
    format: Literal["json", "geojson"] = Field(
        "json", description="geojson: one FeatureCollection, ready for a map"
    )


class FencePatch(BaseModel):
    """Send the `version` you read; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: int = Field(ge=1, description="the version you read; refused if it changed")
    name: ShortText | None = None
    feature: dict[str, Any] | None = Field(
        None, description="a GeoJSON Feature with the new geometry (and radius_m for a circle)"
    )


class FenceOut(BaseModel):
    id: int
    name: str
    kind: FenceKind
    site: str | None
    order_number: str | None = Field(description="the order this destination fence was made for")
    active: bool
    feature: dict[str, Any] = Field(description="the fence as a GeoJSON Feature")
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int


class FeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]


def parse_fence(feature: dict[str, Any], *, fence_id: str, repair: bool = False) -> Fence:
    """The fence a Feature describes, under our id; a FenceError becomes a 422 with its
    reason."""
    props = feature.get("properties")
    props = dict(props) if isinstance(props, dict) else props
    if isinstance(props, dict):
        props.pop("id", None)  # the row id is the fence's id, whatever the client called it
    try:
        return fence_from_geojson({**feature, "id": fence_id, "properties": props}, repair=repair)
    except FenceError as err:
        raise Refused(str(err)) from None


def _stored(fence: Fence, *, name: str, site: str | None) -> dict[str, Any]:
    feature = fence_to_geojson(fence)
    feature["properties"].update(name=name, site=site)
    return feature


_SELECT = (
    "SELECT g.id, g.name, g.kind, g.site, o.number AS order_number, g.active, g.feature,"
    " g.created_at, g.created_by, g.updated_at, g.version"
    " FROM geofences g LEFT JOIN orders o ON o.id = g.order_id"
)


async def insert_fence(
    conn: AsyncConnection[Any],
    fence: Fence,
    *,
    name: str,
    site: str | None,
    actor: str,
    order_id: int | None = None,
) -> int:
    """Store a validated fence; its id (the Feature's id is rewritten to it)."""
    cur = await conn.execute(
        "INSERT INTO geofences (name, kind, feature, site, order_id, created_by)"
        " VALUES (%s, %s, '{}', %s, %s, %s) RETURNING id",
        (name, fence.kind.value, site, order_id, actor),
    )
    row = await cur.fetchone()
    assert row is not None
    fence_id = int(row[0])
    stored = _stored(fence, name=name, site=site)
    stored["id"] = str(fence_id)
    await conn.execute("UPDATE geofences SET feature = %s WHERE id = %s", (Jsonb(stored), fence_id))
    return fence_id


async def create_fence(
    conn: AsyncConnection[Any], feature: dict[str, Any], *, actor: str, repair: bool = False
) -> FenceOut:
    """A fence from a Feature whose properties hold `name`, `kind` and, for a warehouse or
    depot, the `site` it stands for."""
    fence = parse_fence(feature, fence_id="new", repair=repair)
    props = feature.get("properties") or {}
    name, site = props.get("name"), props.get("site")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise Refused("the fence needs properties.name: a name of 1 to 200 characters")
    if site is not None and (not isinstance(site, str) or not site.strip()):
        raise Refused("properties.site must be a site id such as wh1, or left out")
    if fence.kind in (FenceKind.WAREHOUSE, FenceKind.DEPOT) and site is None:
        raise Refused(f"a {fence.kind} fence needs properties.site: the site it stands for")
    fence_id = await insert_fence(conn, fence, name=name.strip(), site=site, actor=actor)
    return await get_fence(conn, fence_id)


async def create_order_fence(
    conn: AsyncConnection[Any],
    *,
    order_id: int,
    number: str,
    lon: float,
    lat: float,
    radius_m: float,
    actor: str,
) -> int:
    """The customer_site circle an order is delivered in; set as its destination fence."""
    try:
        fence = circle_fence("new", FenceKind.CUSTOMER_SITE, lon, lat, radius_m)
    except FenceError as err:
        raise Refused(f"order {number}: its destination cannot be a fence: {err.problem}") from None
    fence_id = await insert_fence(
        conn, fence, name=f"order {number}", site=None, actor=actor, order_id=order_id
    )
    await conn.execute("UPDATE orders SET dest_fence_id = %s WHERE id = %s", (fence_id, order_id))
    return fence_id


async def get_fence(conn: AsyncConnection[Any], fence_id: int) -> FenceOut:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"{_SELECT} WHERE g.id = %s", (fence_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no geofence {fence_id}: GET /api/v1/geofences lists them")
    return FenceOut.model_validate(row)


async def list_fences(conn: AsyncConnection[Any], f: FenceFilter) -> list[FenceOut]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"{_SELECT} WHERE g.active = %(active)s"
        " AND (g.kind = %(kind)s OR %(kind)s::text IS NULL)"
        " AND (g.site = %(site)s OR %(site)s::text IS NULL)"
        " ORDER BY g.id DESC LIMIT %(limit)s",
        {"active": f.active, "kind": f.kind, "site": f.site, "limit": f.limit},
    )
    return [FenceOut.model_validate(r) for r in await cur.fetchall()]


def as_collection(fences: list[FenceOut]) -> FeatureCollection:
    """One FeatureCollection; each Feature carries the row's name, kind, site and version."""
    features = []
    for f in fences:
        props = {
            **f.feature.get("properties", {}),
            "name": f.name,
            "site": f.site,
            "order": f.order_number,
            "active": f.active,
            "version": f.version,
        }
        features.append({**f.feature, "id": str(f.id), "properties": props})
    return FeatureCollection(features=features)


async def _lock(conn: AsyncConnection[Any], fence_id: int, version: int | None) -> FenceOut:
    await conn.execute("SELECT 1 FROM geofences WHERE id = %s FOR UPDATE", (fence_id,))
    current = await get_fence(conn, fence_id)
    if version is not None and current.version != version:
        raise Conflict(
            f"geofence {fence_id} is at version {current.version}, not {version}: someone"
            " changed it; GET it again and re-apply your change"
        )
    return current


async def update_fence(
    conn: AsyncConnection[Any], fence_id: int, patch: FencePatch, *, repair: bool = False
) -> FenceOut:
    """Rename or redraw a fence. Its kind stays: deactivate it and create another for that."""
    current = await _lock(conn, fence_id, patch.version)
    name = patch.name or current.name
    feature = current.feature
    if patch.feature is not None:
        props = patch.feature.get("properties")
        props = dict(props) if isinstance(props, dict) else {}
        if props.setdefault("kind", current.kind.value) != current.kind.value:
            raise Refused(
                f"geofence {fence_id} is a {current.kind} fence and stays one: deactivate it"
                f" and create a {props['kind']} fence instead"
            )
        fence = parse_fence(
            {**patch.feature, "properties": props}, fence_id=str(fence_id), repair=repair
        )
        feature = _stored(fence, name=name, site=current.site)
        feature["id"] = str(fence_id)
    elif patch.name is None:
        return current
    feature["properties"]["name"] = name
    await conn.execute(
        "UPDATE geofences SET name = %s, feature = %s, updated_at = now(),"
        " version = version + 1 WHERE id = %s",
        (name, Jsonb(feature), fence_id),
    )
    return await get_fence(conn, fence_id)


async def deactivate_fence(conn: AsyncConnection[Any], fence_id: int, version: int) -> FenceOut:
    """Take a fence out of use; refused while a trip that has not finished stops in it."""
    current = await _lock(conn, fence_id, version)
    cur = await conn.execute(
        "SELECT DISTINCT s.trip_id FROM trip_stops s JOIN trips t ON t.id = s.trip_id"
        " WHERE s.fence_id = %s AND t.state = ANY(%s) ORDER BY 1",
        (fence_id, list(ACTIVE_TRIP_STATES)),
    )
    trips = [r[0] for r in await cur.fetchall()]
    if trips:
        raise Conflict(
            f"geofence {fence_id} is a stop of trip {', '.join(trips)}, which has not finished:"
            " change those stops with PUT /api/v1/trips/{id}/stops first"
        )
    if not current.active:
        return current
    await conn.execute(
        "UPDATE geofences SET active = false, updated_at = now(), version = version + 1"
        " WHERE id = %s",
        (fence_id,),
    )
    return await get_fence(conn, fence_id)


async def active_site_fence(conn: AsyncConnection[Any], site: str) -> int | None:
    """The active warehouse fence of a site (the oldest, if someone drew two), or None."""
    cur = await conn.execute(
        "SELECT id FROM geofences WHERE site = %s AND kind = 'warehouse' AND active"
        " ORDER BY id LIMIT 1",
        (site,),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def usable_fence(
    conn: AsyncConnection[Any],
    fence_id: int,
    *,
    what: str,
    kinds: tuple[FenceKind, ...] | None = None,
) -> FenceOut:
    """An active fence (of one of `kinds`, if given), or a 422 naming `what` wanted it."""
    try:
        fence = await get_fence(conn, fence_id)
    except NotFound:
        raise Refused(f"{what}: no geofence {fence_id}; GET /api/v1/geofences lists them") from None
    if not fence.active:
        raise Refused(f"{what}: geofence {fence_id} is deactivated; use an active one")
    if kinds is not None and fence.kind not in kinds:
        allowed = " or ".join(kinds)
        raise Refused(f"{what}: geofence {fence_id} is a {fence.kind}; use a {allowed} fence")
    return fence
