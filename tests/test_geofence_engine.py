"""The geofence engine: fences from GeoJSON, metres on the ellipsoid, batch containment.

References are independent of `FenceIndex`: shapely's own predicates point by point for
polygons, Vincenty's geodesic for circles and margins. Circles are compared away from a band
of EDGE_BAND_M on either side of the edge, where the chord test and Vincenty may disagree
(by under 1.5 mm at 50 km).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from shapely import affinity
from shapely.geometry import Point, Polygon

from edge_agent.sources.nmea_parser import decode_lines
from geofence import (
    FenceError,
    FenceIndex,
    LocalFrame,
    circle_fence,
    fence_from_geojson,
    fence_to_geojson,
    fences_from_geojson,
    geodesic_distance_m,
    polygon_fence,
)

NMEA = Path(__file__).parent / "data" / "nmea"
EDGE_BAND_M = 0.01
EDGE_STEP_M = 0.2
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

lons = st.floats(-170, 170)
lats = st.floats(-70, 70)


def dms(d: float, m: float, s: float) -> float:
    return d + m / 60 + s / 3600


def test_vincenty_matches_published_geodesics() -> None:
    # Geoscience Australia's worked example (Flinders Peak to Buninyong): 54 972.271 m.
    d = geodesic_distance_m(
        dms(144, 25, 29.52440),
        -dms(37, 57, 3.72030),
        dms(143, 55, 35.38390),
        -dms(37, 39, 10.15610),
    )
    assert d == pytest.approx(54_972.271, abs=1e-3)
    assert geodesic_distance_m(0, 0, 1, 0) == pytest.approx(111_319.491, abs=1e-3)  # a·π/180
    assert geodesic_distance_m(0, 0, 0, 1) == pytest.approx(110_574.389, abs=1e-3)


@st.composite
def star_polygons(draw: st.DrawFn) -> tuple[float, float, Polygon]:
    lon0, lat0 = draw(lons), draw(lats)
    k = draw(st.integers(3, 16))
    arms = draw(st.lists(st.floats(20, 5_000), min_size=k, max_size=k))
    jitter = draw(st.lists(st.floats(0, 0.8), min_size=k, max_size=k))
    angles = (np.arange(k) + np.array(jitter)) * 2 * math.pi / k
    frame = LocalFrame.at(lon0, lat0)
    x, y = frame.inverse(np.array(arms) * np.cos(angles), np.array(arms) * np.sin(angles))
    poly = Polygon(np.column_stack([x, y]))
    assume(poly.is_valid and poly.area > 0)
    return lon0, lat0, poly


def points_near(
    frame: LocalFrame, offsets: list[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    xy = np.array(offsets, dtype=float).reshape(-1, 2)
    return frame.inverse(xy[:, 0], xy[:, 1])


offsets = st.lists(
    st.tuples(st.floats(-6_000, 6_000), st.floats(-6_000, 6_000)), min_size=1, max_size=80
)


@SETTINGS
@given(
    star_polygons(), st.lists(st.tuples(st.floats(-3, 3), st.floats(-3, 3)), max_size=3), offsets
)
def test_polygon_containment_agrees_with_shapely(shape, shifts, pts) -> None:
    lon0, lat0, poly = shape
    fences = [polygon_fence("p0", "depot", poly)]
    for i, (dx, dy) in enumerate(shifts):  # more fences elsewhere and overlapping
        moved = affinity.translate(poly, dx * 0.01, dy * 0.01)
        fences.append(polygon_fence(f"p{i + 1}", "warehouse", moved))
    x, y = points_near(LocalFrame.at(lon0, lat0), pts)
    hits = set(FenceIndex(fences).contains(x, y))
    expected = {
        (i, f.id) for f in fences for i in range(len(x)) if f.geometry.intersects(Point(x[i], y[i]))
    }
    assert hits == expected


# Distances from a circle's centre as fractions of its radius, many of them near the edge.
scales = st.one_of(st.floats(0, 2), st.floats(0.9999, 1.0001), st.floats(1 - 1e-6, 1 + 1e-6))


@SETTINGS
@given(lons, lats, st.floats(1, 50_000), st.lists(scales, min_size=1, max_size=60), st.data())
def test_circle_containment_agrees_with_geodesic_distance(lon, lat, r, scales, data) -> None:
    fence = circle_fence("c", "customer_site", lon, lat, r)
    bearings = data.draw(
        st.lists(st.floats(0, 2 * math.pi), min_size=len(scales), max_size=len(scales))
    )
    d = np.array(scales) * r
    x, y = points_near(
        fence.frame(), list(zip(d * np.cos(bearings), d * np.sin(bearings), strict=True))
    )
    truth = geodesic_distance_m(lon, lat, x, y) <= r
    far = np.abs(geodesic_distance_m(lon, lat, x, y) - r) > EDGE_BAND_M
    found = np.zeros(len(x), dtype=bool)
    found[FenceIndex([fence]).contains(x, y).point_index] = True
    assert np.array_equal(found[far], truth[far])


def distance_to_outline_m(
    poly: Polygon, frame: LocalFrame, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Geodesic distance from each point to the polygon's edge, sampled every 20 cm at most
    along its lon/lat-straight segments (so over by at most 10 cm, and by under 1 mm 5 m away;
    the plane only shortlists samples, generously)."""
    edge = shapely.get_coordinates(shapely.segmentize(poly.boundary, EDGE_STEP_M / 111_320))
    ex, ey = frame.forward(edge[:, 0], edge[:, 1])
    px, py = frame.forward(x, y)
    out = []
    for i in range(len(x)):
        planar = np.hypot(ex - px[i], ey - py[i])
        near = planar <= planar.min() * 1.01 + 5
        out.append(geodesic_distance_m(edge[near, 0], edge[near, 1], x[i], y[i]).min())
    return np.array(out)


@SETTINGS
@given(star_polygons(), st.floats(5, 500), st.sampled_from([-1, 1]), offsets)
def test_polygon_margins_are_metres_on_the_ground(shape, m, sign, pts) -> None:
    lon0, lat0, poly = shape
    index = FenceIndex([polygon_fence("p", "depot", poly)])
    frame = LocalFrame.at(lon0, lat0)
    # Besides the random points, some just either side of the offset edge, where the margin
    # decides: vertices of the outline offset by 0.5 % less and more than the margin.
    plane = frame.to_metric(poly)
    near = [
        xy[:: max(1, len(xy) // 30)]
        for f in (0.995, 1.005)
        if len(xy := shapely.get_coordinates(plane.buffer(sign * m * f, quad_segs=64).boundary))
    ]
    x, y = points_near(frame, [*pts, *map(tuple, np.concatenate([np.empty((0, 2)), *near]))])
    inside = shapely.intersects_xy(poly, x, y)
    signed = np.where(inside, -1, 1) * distance_to_outline_m(poly, frame, x, y)
    got = index.contains_with_margin(x, y, ["p"] * len(x), sign * m)
    tol = 0.01 + 2e-3 * m  # sampling the edge; buffer arcs of 16 segments a quarter (1.2e-3 m)
    assert np.all(got[signed < sign * m - tol])
    assert not np.any(got[signed > sign * m + tol])
    assert np.allclose(
        index.distances_to_edge_m(x, y, ["p"] * len(x)), signed, atol=0.11, rtol=1e-4
    )


@SETTINGS
@given(
    lons,
    lats,
    st.floats(10, 20_000),
    st.floats(-5_000, 5_000),
    st.lists(scales, min_size=1, max_size=60),
)
def test_circle_margins_are_metres_on_the_ground(lon, lat, r, m, fractions) -> None:
    index = FenceIndex([circle_fence("c", "depot", lon, lat, r)])
    d = np.array(fractions) * max(r + m, 1.0)
    bearing = np.linspace(0, 2 * math.pi, len(d), endpoint=False)
    x, y = points_near(
        LocalFrame.at(lon, lat), list(zip(d * np.cos(bearing), d * np.sin(bearing), strict=True))
    )
    dist = geodesic_distance_m(lon, lat, x, y)
    got = index.contains_with_margin(x, y, ["c"] * len(x), m)
    far = np.abs(dist - (r + m)) > EDGE_BAND_M
    assert np.array_equal(got[far], (dist <= r + m)[far])
    assert np.allclose(index.distances_to_edge_m(x, y, ["c"] * len(x)), dist - r, atol=1e-6)
    hits = index.contains(x, y, margin_m=m)
    assert set(hits.point_index.tolist()) == set(np.flatnonzero(got).tolist())


@SETTINGS
@given(star_polygons(), lons, lats, st.floats(1, 50_000))
def test_geojson_round_trip(shape, lon, lat, r) -> None:
    _, _, poly = shape
    for fence in (
        polygon_fence("p", "route_corridor", poly),
        circle_fence("c", "warehouse", lon, lat, r),
    ):
        feature = fence_to_geojson(fence)
        again = fence_from_geojson(json.loads(json.dumps(feature)))
        assert again == fence
        assert fence_to_geojson(again) == feature


def square(lon: float = 4.35, lat: float = 50.85, size: float = 0.01) -> list[list[list[float]]]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return [ring]


def feature(geometry: dict, **props: object) -> dict:
    return {
        "type": "Feature",
        "id": "f1",
        "geometry": geometry,
        "properties": {"kind": "depot", **props},
    }


BAD = [
    (feature({"type": "Polygon", "coordinates": [square()[0][:-1]]}), "is not closed"),
    (
        feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}),
        "Self-intersection",
    ),
    (
        feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}),
        "at least 4 positions",
    ),
    (feature({"type": "Polygon", "coordinates": square(lon=179.999)}), "out of range"),
    (feature({"type": "Polygon", "coordinates": square(size=5)}), "split it into smaller fences"),
    (feature({"type": "Point", "coordinates": [4.35, 50.85]}), "needs properties.radius_m"),
    (feature({"type": "Point", "coordinates": [4.35, 50.85]}, radius_m=0), "radius_m must be"),
    (feature({"type": "Point", "coordinates": [4.35, 50.85]}, radius_m=50_001), "radius_m must be"),
    (feature({"type": "Point", "coordinates": [4.35, 95]}, radius_m=10), "out of range"),
    (feature({"type": "Point", "coordinates": [179.9999, 0]}, radius_m=100), "antimeridian"),
    (feature({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}), "not a fence"),
    (
        feature({"type": "Polygon", "coordinates": square()}, kind="office"),
        "is not one of warehouse",
    ),
    ({**feature({"type": "Polygon", "coordinates": square()}), "id": None}, "non-empty string id"),
    (
        feature({"type": "Polygon", "coordinates": [[[0, 0], [1, "a"], [1, 1], [0, 0]]]}),
        "finite numbers",
    ),
    ({"type": "Polygon", "coordinates": square()}, "expected a GeoJSON Feature"),
]


@pytest.mark.parametrize(("obj", "reason"), BAD)
def test_bad_geojson_is_refused_with_a_reason(obj, reason) -> None:
    with pytest.raises(FenceError, match=reason):
        fence_from_geojson(obj)


def test_repair_splits_a_bow_tie_and_duplicate_ids_are_refused() -> None:
    bow = feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]})
    fence = fence_from_geojson(bow, repair=True)
    assert fence.geometry.is_valid and len(fence.geometry.geoms) == 2
    twice = {
        "type": "FeatureCollection",
        "features": [feature({"type": "Polygon", "coordinates": square()})] * 2,
    }
    with pytest.raises(FenceError, match="more than one fence"):
        fences_from_geojson(twice)


@pytest.mark.parametrize("log", ["telit-he910", "haicom-305N", "rx210", "nmea-rtk"])
def test_recorded_gps_fixes_fall_inside_a_fence_drawn_around_them(log: str) -> None:
    lines = [
        line
        for line in (NMEA / f"{log}.log").read_text(encoding="latin-1").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    fixes, _ = decode_lines(lines)
    x, y = np.array([f.lon for f in fixes]), np.array([f.lat for f in fixes])
    assert len(x) > 20
    lon0, lat0 = float(np.median(x)), float(np.median(y))
    spread = float(geodesic_distance_m(lon0, lat0, x, y).max())
    # A 30 m-margin polygon around the track's hull, a circle just past the farthest fix, and
    # a decoy a kilometre away that nothing must hit.
    frame = LocalFrame.at(lon0, lat0)
    hull = shapely.MultiPoint(np.column_stack(frame.forward(x, y))).convex_hull.buffer(30)
    fences = [
        polygon_fence("yard", "depot", frame.from_metric(hull)),
        circle_fence("ring", "customer_site", lon0, lat0, spread + 0.5),
        circle_fence("decoy", "restricted_zone", *map(float, frame.inverse(1_000, 0)), 200),
    ]
    index = FenceIndex(fences)
    hits = index.contains(x, y)
    assert set(hits) == {(i, f) for i in range(len(x)) for f in ("yard", "ring")}
    assert np.all(index.contains_with_margin(x, y, ["yard"] * len(x), -20))
    assert not np.any(index.contains_with_margin(x, y, ["yard"] * len(x), -40 - spread))
