"""A vehicle's trail: the fixes of its trackers over a time range, downsampled in SQL, and
the GeoJSON Feature models the map's endpoints return (a trip's map is `trip_map.py`).

The map replays trails and draws a trip's way, so a trail stays small whatever its range:
up to `max_points` fixes come back as stored; more are averaged into equal time buckets in
the database, so a month of 1 Hz fixes crosses the wire as at most `max_points` points.
With TimescaleDB (the storage mode says so) that is its `time_bucket`, the function its
planner and continuous aggregates know; plain PostgreSQL 14+ has `date_bin`. Both bucket
from the range's start, so they give the same buckets and the first one starts at `from`.

A vehicle's fixes are those of the trackers assigned to it now (`trackers`), as
docs/live-map.md says; the range is half-open, `from <= time < to`, so consecutive replay
windows never repeat a fix. Longitudes are averaged as plain numbers: a bucket straddling
the antimeridian would land on the far side of the globe, a case Tracklane leaves out as
its fences do (they may not cross it).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from psycopg import AsyncConnection, sql
from pydantic import BaseModel, Field

from ingest_service.storage import StorageMode

MAX_RANGE = timedelta(days=31)
MAX_POINTS = 10_000
DEFAULT_POINTS = 2000
P = TypeVar("P")

_FIXES = (
    " FROM trackers t JOIN positions p"
    " ON p.site = t.site AND p.gateway = t.gateway AND p.device = t.device"
    " WHERE t.vehicle_id = %(vehicle)s AND p.time >= %(start)s AND p.time < %(end)s"
)
# One more row than wanted: that extra row is how we know the range needs downsampling,
# without counting every fix first.
_RAW = sql.SQL(
    "SELECT p.time, p.lon, p.lat" + _FIXES + " ORDER BY p.time, p.gateway, p.device LIMIT %(limit)s"
)
_BUCKETED = sql.SQL(
    "SELECT {bucket} AS time, avg(p.lon) AS lon, avg(p.lat) AS lat" + _FIXES
    + " GROUP BY 1 ORDER BY 1"
)  # fmt: skip
_TIME_BUCKET = sql.SQL("time_bucket(%(width)s::interval, p.time, %(start)s::timestamptz)")
_DATE_BIN = sql.SQL("date_bin(%(width)s::interval, p.time, %(start)s::timestamptz)")


class Feature(BaseModel, Generic[P]):
    """A GeoJSON Feature (RFC 7946); coordinates are [lon, lat]."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any] | None = Field(description="null when there is nothing to draw")
    properties: P


class FeatureCollection(BaseModel, Generic[P]):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature[P]]


class Trail(BaseModel):
    times: list[datetime] = Field(description="one per coordinate, ascending")
    coordinates: list[list[float]] = Field(description="[lon, lat] positions")
    bucket_s: int | None = Field(description="the bucket width; null when not downsampled")


def bucket_width(start: datetime, end: datetime, max_points: int) -> timedelta:
    """Whole seconds, at least one, such that [start, end) splits into at most `max_points`
    buckets."""
    span_s = (end - start).total_seconds()
    return timedelta(seconds=max(1, math.ceil(span_s / max_points)))


def bucketed_query(mode: StorageMode) -> sql.Composed:
    """The downsampling query for this storage mode."""
    return _BUCKETED.format(bucket=_TIME_BUCKET if mode.timescale else _DATE_BIN)


async def read_trail(
    conn: AsyncConnection[Any],
    mode: StorageMode,
    vehicle_id: str | None,
    start: datetime,
    end: datetime,
    max_points: int = DEFAULT_POINTS,
) -> Trail:
    """The vehicle's fixes in [start, end): as stored when there are at most `max_points`,
    otherwise one averaged point per bucket, stamped with the bucket's start. No vehicle
    (a trip without one) has no fixes."""
    params: dict[str, Any] = {"vehicle": vehicle_id, "start": start, "end": end}
    cur = await conn.execute(_RAW, {**params, "limit": max_points + 1})
    rows = await cur.fetchall()
    bucket_s = None
    if len(rows) > max_points:
        width = bucket_width(start, end, max_points)
        cur = await conn.execute(bucketed_query(mode), {**params, "width": width})
        rows = await cur.fetchall()
        bucket_s = int(width.total_seconds())
    return Trail(
        times=[r[0] for r in rows],
        coordinates=[[r[1], r[2]] for r in rows],
        bucket_s=bucket_s,
    )


def trail_feature(trail: Trail, feature_id: str, **properties: Any) -> Feature[dict[str, Any]]:
    """The trail as a Feature: a LineString, a Point for a single fix, and `geometry: null`
    for none (GeoJSON LineStrings need two positions); `properties.times` has one time per
    coordinate and `points` how many there are."""
    coords = trail.coordinates
    geometry: dict[str, Any] | None = None
    if len(coords) == 1:
        geometry = {"type": "Point", "coordinates": coords[0]}
    elif coords:
        geometry = {"type": "LineString", "coordinates": coords}
    props = {**properties, "times": trail.times, "points": len(coords), "bucket_s": trail.bucket_s}
    return Feature(id=feature_id, geometry=geometry, properties=props)
