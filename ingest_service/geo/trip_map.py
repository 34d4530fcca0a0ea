"""A trip drawn for the map: its planned route, the trail it travelled, its stops and origin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import shapely.geometry
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ingest_service.dispatch.errors import NotFound
from ingest_service.geo.routes import read_stops
from ingest_service.geo.trails import Feature, FeatureCollection, read_trail, trail_feature
from ingest_service.storage import StorageMode


def marker(geometry: dict[str, Any]) -> list[float]:
    """Where a fence's pin goes: a circle's centre, a polygon's centroid, or a point inside
    it when the centroid falls outside (a U-shaped yard)."""
    if geometry["type"] == "Point":
        return geometry["coordinates"][:2]
    shape = shapely.geometry.shape(geometry)
    point = shape.centroid if shape.contains(shape.centroid) else shape.representative_point()
    return [point.x, point.y]


async def trip_map(
    conn: AsyncConnection[Any], mode: StorageMode, trip_id: str, max_points: int
) -> FeatureCollection[dict[str, Any]]:
    """The trip drawn: its planned route (`kind: "route"`, left out when none is planned);
    the trail since it departed (or was created) until it completed or now (`kind:
    "trail"`); each stop as a Point at its fence's `marker` with the stop's state, ETA and
    orders (`kind: "stop"`); the origin fence as stored (`kind: "origin"`): a polygon, or a
    circle as its centre Point with `properties.radius_m`, since GeoJSON has no circle."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT t.vehicle_id, t.route, t.created_at, t.departed_at, t.completed_at,"
        " g.id AS fence_id, g.name, g.kind, g.feature"
        " FROM trips t LEFT JOIN geofences g ON g.id = t.origin_fence_id WHERE t.id = %s",
        (trip_id,),
    )
    trip = await cur.fetchone()
    if trip is None:
        raise NotFound(f"no trip {trip_id}: GET /api/v1/trips lists them")
    stops = await read_stops(conn, trip_id)
    await cur.execute(
        "SELECT id, feature FROM geofences WHERE id = ANY(%s)", ([s.fence_id for s in stops],)
    )
    fences = {r["id"]: r["feature"] for r in await cur.fetchall()}
    start = trip["departed_at"] or trip["created_at"]
    end = trip["completed_at"] or datetime.now(UTC)
    travelled = await read_trail(conn, mode, trip["vehicle_id"], start, end, max_points)

    features: list[Feature[dict[str, Any]]] = []
    if trip["route"] is not None:
        features.append(Feature(id="route", geometry=trip["route"], properties={"kind": "route"}))
    features.append(trail_feature(travelled, "trail", kind="trail", vehicle_id=trip["vehicle_id"]))
    for stop in stops:
        point = {"type": "Point", "coordinates": marker(fences[stop.fence_id]["geometry"])}
        props = {"kind": "stop", **stop.model_dump()}
        features.append(Feature(id=f"stop-{stop.seq}", geometry=point, properties=props))
    if (origin := trip["feature"]) is not None:
        props = {**origin["properties"], "kind": "origin", "fence_id": trip["fence_id"],
                 "name": trip["name"], "fence_kind": trip["kind"]}  # fmt: skip
        features.append(Feature(id="origin", geometry=origin["geometry"], properties=props))
    return FeatureCollection(features=features)
