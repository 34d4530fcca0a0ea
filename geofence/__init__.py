"""Geofences: which fences contain which points, and when a vehicle is confirmed in or out.

Pure (shapely and numpy only, no I/O). `shapes` reads and validates fences (GeoJSON
polygons, multipolygons and circles), `metric` measures in metres on the WGS84 ellipsoid,
`index` answers "which fences contain these points" for batches of points, `state` is the
per-(vehicle, fence) machine that confirms entries and exits on event time with distance
and time hysteresis, and `eta` estimates arrival along a route or by great circle.
"""

from geofence.index import FenceIndex, Hits
from geofence.metric import LocalFrame, geodesic_distance_m
from geofence.shapes import (
    Circle,
    Fence,
    FenceError,
    FenceKind,
    circle_fence,
    fence_from_geojson,
    fence_to_geojson,
    fences_from_geojson,
    polygon_fence,
)

__all__ = [
    "Circle",
    "Fence",
    "FenceError",
    "FenceIndex",
    "FenceKind",
    "Hits",
    "LocalFrame",
    "circle_fence",
    "fence_from_geojson",
    "fence_to_geojson",
    "fences_from_geojson",
    "geodesic_distance_m",
    "polygon_fence",
]
