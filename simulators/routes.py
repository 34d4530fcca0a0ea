"""Move a simulated vehicle along waypoints at a steady speed. Pure: the caller owns time."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

EARTH_RADIUS_M = 6_371_000.0
LatLon = tuple[float, float]

# A truck leaving a warehouse yard and driving a loop on the roads around it (made-up site
# near 52.0N 4.4E; about 2.3 km). Geofences in the demo can be drawn around the first point.
DEMO_ROUTE: tuple[LatLon, ...] = (
    (52.00000, 4.40000),
    (52.00150, 4.40000),
    (52.00150, 4.40600),
    (52.00600, 4.40600),
    (52.00600, 4.41500),
    (52.00000, 4.41500),
    (52.00000, 4.40000),
)
# The demo fleet's second truck: DEMO_ROUTE mirrored through the yard, south and west.
DEMO_ROUTE_SOUTH: tuple[LatLon, ...] = tuple(
    (round(104.0 - lat, 5), round(8.8 - lon, 5)) for lat, lon in DEMO_ROUTE
)


def distance_m(a: LatLon, b: LatLon) -> float:
    """Great-circle (haversine) distance."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def bearing_deg(a: LatLon, b: LatLon) -> float:
    """Initial true bearing from a to b, in [0, 360)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return math.degrees(math.atan2(y, x)) % 360.0


def offset_m(point: LatLon, north_m: float, east_m: float) -> LatLon:
    """A point moved by a few metres; flat-earth, fine for GPS noise."""
    lat, lon = point
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * max(1e-9, math.cos(math.radians(lat)))))
    return lat + dlat, ((lon + dlon + 180.0) % 360.0) - 180.0


class RouteWalker:
    """Where a vehicle is after driving `distance` metres along a route.

    Segments are interpolated linearly in lat/lon, which is exact enough for the short legs
    of a delivery route. With `loop`, the vehicle starts over at the first waypoint.
    """

    def __init__(self, waypoints: Sequence[LatLon], *, loop: bool = True) -> None:
        if len(waypoints) < 2:
            raise ValueError("a route needs at least two waypoints")
        self.waypoints = tuple(waypoints)
        self.loop = loop
        self.legs = [distance_m(a, b) for a, b in itertools.pairwise(waypoints)]
        self.length_m = sum(self.legs)
        if self.length_m <= 0:
            raise ValueError("a route's waypoints must not all be the same point")

    def at(self, distance: float) -> tuple[LatLon, float]:
        """Position and heading (degrees) after `distance` metres."""
        if self.loop:
            distance %= self.length_m
        distance = min(max(distance, 0.0), self.length_m)
        for i, leg in enumerate(self.legs):
            if leg > 0 and (distance <= leg or i == len(self.legs) - 1):
                a, b = self.waypoints[i], self.waypoints[i + 1]
                f = min(distance / leg, 1.0)
                point = (a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f)
                return point, bearing_deg(a, b)
            distance -= leg
        # Only zero-length legs remain: stand on the last waypoint.
        return self.waypoints[-1], 0.0

    def back_to_start(self, distance: float) -> tuple[LatLon, ...]:
        """The way back from `distance` along the route (first lap) to its first waypoint,
        the legs driven so far in reverse: where the vehicle is, then each waypoint it
        passed, last to first. A single point when it has not left the start."""
        if self.loop:
            distance %= self.length_m
        distance = min(max(distance, 0.0), self.length_m)
        here, _ = self.at(distance)
        if distance <= 0:
            return (here,)
        passed, reached = [self.waypoints[0]], 0.0
        for point, leg in zip(self.waypoints[1:], self.legs, strict=True):
            reached += leg
            if reached >= distance:
                break
            passed.append(point)
        return (here, *reversed(passed))

    def along_m(self, point: LatLon) -> float:
        """How far along the route (from its start, first lap) the point nearest to `point`
        lies: where a vehicle driving the route passes closest to it."""
        best, best_gap, start = 0.0, math.inf, 0.0
        for (a, b), leg in zip(itertools.pairwise(self.waypoints), self.legs, strict=True):
            # Flat-earth metres around a: fine for a leg of a delivery route.
            scale = math.cos(math.radians(a[0]))
            bx, by = (b[1] - a[1]) * scale, b[0] - a[0]
            px, py = (point[1] - a[1]) * scale, point[0] - a[0]
            length2 = bx * bx + by * by
            f = 0.0 if length2 == 0 else min(1.0, max(0.0, (px * bx + py * by) / length2))
            gap = math.hypot(px - f * bx, py - f * by)
            if gap < best_gap:
                best, best_gap = start + f * leg, gap
            start += leg
        return best
