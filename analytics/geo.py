"""Great-circle distances on a sphere of the Earth's mean radius (IUGG R1).

The haversine is what the vehicle-distance query computes in SQL (ingest_service/analytics/
vehicles.py), with the same radius, so the two agree to rounding. On a sphere it is off the
ellipsoid by at most 0.5 %, which is well inside what consecutive GPS fixes are worth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres along the great circle between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def path_length_m(points: Iterable[tuple[float, float]]) -> float:
    """The sum of great-circle legs between consecutive (lat, lon) points."""
    total, last = 0.0, None
    for point in points:
        if last is not None:
            total += haversine_m(*last, *point)
        last = point
    return total
