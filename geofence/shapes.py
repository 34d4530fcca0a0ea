"""Fences and their GeoJSON form: polygons, multipolygons and circles, validated.

A fence is one GeoJSON Feature. Its `id` is the Feature's `id` (or `properties.id`), its
kind is `properties.kind`, and its geometry a Polygon or MultiPolygon. GeoJSON has no
circle, so a circle is a Feature whose geometry is a Point (the centre) with
`properties.radius_m` (metres on the ground, 0 < r <= 50 km):

    {"type": "Feature", "id": "cust-17",
     "geometry": {"type": "Point", "coordinates": [4.3517, 50.8503]},
     "properties": {"kind": "customer_site", "radius_m": 120}}

Polygon edges are straight lines in lon/lat, as RFC 7946 §3.1.1 says. Rings must be closed
and the geometry valid (or repaired with `repair=True`, which applies `shapely.make_valid`).
Other properties are ignored. Anything refused raises `FenceError`, naming the fence and
the problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon

from geofence.metric import LocalFrame, ecef

MAX_RADIUS_M = 50_000.0
# Vertices must lie this close to the fence's centre: the local plane is then good to 0.08 %.
MAX_EXTENT_M = 250_000.0
MAX_ABS_LAT = 85.0  # the lon/lat plane degenerates towards the poles
CIRCLE_VERTICES = 72  # of the drawn outline only; containment uses the exact circle


class FenceKind(StrEnum):
    WAREHOUSE = "warehouse"
    DEPOT = "depot"
    CUSTOMER_SITE = "customer_site"
    RESTRICTED_ZONE = "restricted_zone"
    ROUTE_CORRIDOR = "route_corridor"


class FenceError(ValueError):
    """A fence that cannot be used; `problem` says why and how to fix it."""

    def __init__(self, fence: str, problem: str) -> None:
        super().__init__(f"fence {fence}: {problem}")
        self.fence = fence
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Circle:
    lon: float
    lat: float
    radius_m: float


@dataclass(frozen=True)
class Fence:
    """One fence. For a circle, `geometry` is its outline (a circumscribed 72-gon) for maps
    and bounding boxes; containment and distances use `circle` exactly."""

    id: str
    kind: FenceKind
    geometry: Polygon | MultiPolygon
    circle: Circle | None = None

    @property
    def centre(self) -> tuple[float, float]:
        """(lon, lat) the fence's metric frame is centred on."""
        if self.circle is not None:
            return self.circle.lon, self.circle.lat
        x0, y0, x1, y1 = self.geometry.bounds
        return (x0 + x1) / 2, (y0 + y1) / 2

    def frame(self) -> LocalFrame:
        return LocalFrame.at(*self.centre)


def circle_fence(
    fence_id: str, kind: FenceKind | str, lon: float, lat: float, radius_m: float
) -> Fence:
    """A circle of `radius_m` metres on the ground around (lon, lat)."""
    fence_id, kind = _id(fence_id), _kind(fence_id, kind)
    lon, lat = _position(fence_id, [lon, lat], "the centre")
    if not _number(radius_m) or not 0 < radius_m <= MAX_RADIUS_M:
        raise FenceError(
            fence_id,
            f"radius_m must be a number of metres in (0, {MAX_RADIUS_M:.0f}], not {radius_m!r}",
        )
    frame = LocalFrame.at(lon, lat)
    angles = np.linspace(0, 2 * math.pi, CIRCLE_VERTICES, endpoint=False)
    # The projection shortens distances from the centre, so radius r on the plane already
    # reaches past the ground circle; widening to the circumscribed polygon keeps it outside.
    r = radius_m / math.cos(math.pi / CIRCLE_VERTICES)
    lons, lats = frame.inverse(r * np.cos(angles), r * np.sin(angles))
    outline = Polygon(np.column_stack([lons, lats]))
    _check_extent(fence_id, outline, (lon, lat))
    return Fence(fence_id, kind, outline, Circle(lon, lat, float(radius_m)))


def polygon_fence(
    fence_id: str, kind: FenceKind | str, geometry: Polygon | MultiPolygon, *, repair: bool = False
) -> Fence:
    """A polygonal fence from a lon/lat shapely geometry, validated (or repaired)."""
    fence_id, kind = _id(fence_id), _kind(fence_id, kind)
    if not isinstance(geometry, Polygon | MultiPolygon):
        raise FenceError(
            fence_id, f"a {geometry.geom_type} is not a fence; use a Polygon or MultiPolygon"
        )
    if geometry.is_empty:
        raise FenceError(fence_id, "the geometry is empty")
    for lon, lat in shapely.get_coordinates(geometry):
        _position(fence_id, [lon, lat], "a vertex")
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        if not repair:
            raise FenceError(
                fence_id,
                f"not a valid polygon: {reason}; fix the outline, or pass repair=True to split "
                "it into valid parts with shapely.make_valid",
            )
        parts = shapely.get_parts(shapely.make_valid(geometry))
        polygons = [
            p
            for g in parts
            for p in shapely.get_parts(g)
            if isinstance(p, Polygon) and not p.is_empty
        ]
        if not polygons:
            raise FenceError(
                fence_id,
                f"not a valid polygon ({reason}) and nothing with an area is left after repair",
            )
        geometry = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
    if geometry.area == 0:
        raise FenceError(fence_id, "the polygon has no area")
    x0, y0, x1, y1 = geometry.bounds
    _check_extent(fence_id, geometry, ((x0 + x1) / 2, (y0 + y1) / 2))
    return Fence(fence_id, kind, geometry)


def fence_from_geojson(feature: Mapping[str, Any] | str, *, repair: bool = False) -> Fence:
    """One fence from a GeoJSON Feature (a mapping or its JSON text); see the module doc."""
    obj = json.loads(feature) if isinstance(feature, str) else feature
    if not isinstance(obj, Mapping) or obj.get("type") != "Feature":
        raise FenceError(
            "?", f'expected a GeoJSON Feature ({{"type": "Feature", ...}}), got {_short(obj)}'
        )
    props = obj.get("properties") or {}
    if not isinstance(props, Mapping):
        raise FenceError(str(obj.get("id", "?")), "properties must be an object")
    fence_id = _feature_id(obj, props)
    kind = _kind(fence_id, props.get("kind"))
    geom = obj.get("geometry")
    if not isinstance(geom, Mapping):
        raise FenceError(fence_id, "the Feature has no geometry")
    gtype, coords = geom.get("type"), geom.get("coordinates")
    if gtype == "Point":
        if "radius_m" not in props:
            raise FenceError(
                fence_id, "a Point is a circle's centre and needs properties.radius_m (metres)"
            )
        lon, lat = _position(fence_id, coords, "the centre")
        return circle_fence(fence_id, kind, lon, lat, props["radius_m"])
    if "radius_m" in props:
        raise FenceError(fence_id, f"radius_m is only for circles (Point geometry), not a {gtype}")
    if gtype == "Polygon":
        shape: Polygon | MultiPolygon = _polygon(fence_id, coords, "the polygon")
    elif gtype == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise FenceError(fence_id, "a MultiPolygon needs a non-empty list of polygons")
        shape = MultiPolygon([_polygon(fence_id, p, f"polygon {i}") for i, p in enumerate(coords)])
    else:
        raise FenceError(
            fence_id,
            f"a {gtype} is not a fence; use a Polygon, a MultiPolygon "
            "or a Point with properties.radius_m",
        )
    return polygon_fence(fence_id, kind, shape, repair=repair)


def fences_from_geojson(
    collection: Mapping[str, Any] | str, *, repair: bool = False
) -> list[Fence]:
    """Every fence of a FeatureCollection; ids must be unique."""
    obj = json.loads(collection) if isinstance(collection, str) else collection
    if not isinstance(obj, Mapping) or obj.get("type") != "FeatureCollection":
        raise FenceError("?", f"expected a GeoJSON FeatureCollection, got {_short(obj)}")
    fences = [fence_from_geojson(f, repair=repair) for f in obj.get("features") or []]
    return _unique(fences)


def fence_to_geojson(fence: Fence) -> dict[str, Any]:
    """The Feature `fence_from_geojson` reads back into an equal fence."""
    props: dict[str, Any] = {"kind": fence.kind.value}
    if fence.circle is not None:
        geometry: dict[str, Any] = {
            "type": "Point",
            "coordinates": [fence.circle.lon, fence.circle.lat],
        }
        props["radius_m"] = fence.circle.radius_m
    elif isinstance(fence.geometry, Polygon):
        geometry = {"type": "Polygon", "coordinates": _rings(fence.geometry)}
    else:
        geometry = {
            "type": "MultiPolygon",
            "coordinates": [_rings(p) for p in fence.geometry.geoms],
        }
    return {"type": "Feature", "id": fence.id, "geometry": geometry, "properties": props}


def _unique(fences: Iterable[Fence]) -> list[Fence]:
    seen: set[str] = set()
    out = []
    for f in fences:
        if f.id in seen:
            raise FenceError(f.id, "this id is used by more than one fence")
        seen.add(f.id)
        out.append(f)
    return out


def _rings(p: Polygon) -> list[list[list[float]]]:
    return [[list(c) for c in r.coords] for r in (p.exterior, *p.interiors)]


def _feature_id(obj: Mapping[str, Any], props: Mapping[str, Any]) -> str:
    fid, pid = obj.get("id"), props.get("id")
    if fid is not None and pid is not None and fid != pid:
        raise FenceError(str(fid), f"the Feature id {fid!r} and properties.id {pid!r} differ")
    return _id(fid if fid is not None else pid)


def _id(fence_id: object) -> str:
    if not isinstance(fence_id, str) or not fence_id.strip():
        raise FenceError(repr(fence_id), "a fence needs a non-empty string id (the Feature's id)")
    return fence_id


def _kind(fence_id: str, kind: object) -> FenceKind:
    try:
        return FenceKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in FenceKind)
        raise FenceError(fence_id, f"kind {kind!r} is not one of {allowed}") from None


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _position(fence_id: str, pos: object, where: str) -> tuple[float, float]:
    if not isinstance(pos, list | tuple) or len(pos) not in (2, 3) or not all(map(_number, pos)):
        raise FenceError(
            fence_id, f"{where} {_short(pos)} is not a position [lon, lat] of finite numbers"
        )
    lon, lat = float(pos[0]), float(pos[1])
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        raise FenceError(
            fence_id, f"{where} [{lon}, {lat}] is out of range; positions are [lon, lat] in degrees"
        )
    if abs(lat) > MAX_ABS_LAT:
        raise FenceError(fence_id, f"{where} [{lon}, {lat}] is beyond ±{MAX_ABS_LAT}° latitude")
    return lon, lat


def _polygon(fence_id: str, rings: object, where: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise FenceError(fence_id, f"{where} needs a non-empty list of rings")
    out = []
    for i, ring in enumerate(rings):
        name = f"{where}, ring {i}" + (" (outer)" if i == 0 else " (hole)")
        if not isinstance(ring, list) or len(ring) < 4:
            raise FenceError(
                fence_id, f"{name} needs at least 4 positions, the last repeating the first"
            )
        pts = [_position(fence_id, p, f"{name}: position") for p in ring]
        if pts[0] != pts[-1]:
            raise FenceError(
                fence_id,
                f"{name} is not closed: it starts at {list(pts[0])} and ends at {list(pts[-1])}; "
                "repeat the first position at the end",
            )
        out.append(pts)
    return Polygon(out[0], out[1:])


def _check_extent(fence_id: str, geom: Polygon | MultiPolygon, centre: tuple[float, float]) -> None:
    x0, _, x1, _ = geom.bounds
    if not np.all(np.isfinite(geom.bounds)) or x1 - x0 > 180:
        raise FenceError(
            fence_id, "it crosses the antimeridian; split it at ±180° (RFC 7946 §3.1.9)"
        )
    pts = shapely.get_coordinates(geom)
    far = float(np.max(np.linalg.norm(ecef(pts[:, 0], pts[:, 1]) - ecef(*centre), axis=-1)))
    if far > MAX_EXTENT_M:
        raise FenceError(
            fence_id,
            f"it reaches {far / 1000:.0f} km from its centre, "
            f"more than {MAX_EXTENT_M / 1000:.0f} km; "
            "split it into smaller fences",
        )
    _, y0, _, y1 = geom.bounds
    if max(abs(y0), abs(y1)) > MAX_ABS_LAT:
        raise FenceError(fence_id, f"it reaches beyond ±{MAX_ABS_LAT}° latitude")


def _short(obj: object) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."
