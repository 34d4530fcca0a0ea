"""Metres on the WGS84 ellipsoid: a local metric plane, and the geodesic between two points.

`LocalFrame` is the tangent plane of the ellipsoid at a fence's centre (east, north in
metres), reached by orthogonal projection of the ellipsoid's surface onto that plane: exact
on the ellipsoid, no spherical model. Its scale is exactly 1 across the radius and
cos(d / R) along it at a distance d from the centre, so lengths and offsets are short by at
most 1 - cos(d / R): 0.003 % at 50 km, 0.08 % at 250 km (the largest fence `shapes`
accepts). Circles are therefore true circles on the ground and buffers are metres.

`geodesic_distance_m` is Vincenty's inverse formula on WGS84 (within 0.5 mm of Karney's
exact geodesic; it may not converge for nearly antipodal points, which no fence produces).
Nothing here takes degrees as metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

A = 6_378_137.0  # WGS84 semi-major axis, metres
F = 1 / 298.257223563
B = A * (1 - F)
E2 = F * (2 - F)

# Geographic edges are straight in lon/lat (RFC 7946 §3.1.1); cut them this short before
# projecting so the projected straight segments bow away from them by under 3 mm.
GEO_STEP_DEG = 0.002
# And metric edges this short before going back to lon/lat, for the same reason.
METRIC_STEP_M = 200.0

Floats = NDArray[np.float64]
G = TypeVar("G", bound=shapely.Geometry)


def radii_m(lat: ArrayLike) -> tuple[Floats, Floats]:
    """Meridional (M) and prime-vertical (N) radii of curvature at these latitudes."""
    s2 = np.sin(np.radians(lat)) ** 2
    w = np.sqrt(1 - E2 * s2)
    return A * (1 - E2) / w**3, A / w


def ecef(lon: ArrayLike, lat: ArrayLike) -> Floats:
    """Earth-centred coordinates (metres, shape (..., 3)) of points on the ellipsoid."""
    lam, phi = np.radians(lon), np.radians(lat)
    cphi, sphi = np.cos(phi), np.sin(phi)
    n = A / np.sqrt(1 - E2 * sphi * sphi)
    return np.stack([n * cphi * np.cos(lam), n * cphi * np.sin(lam), n * (1 - E2) * sphi], -1)


def chord_for_arc_m(arc_m: ArrayLike, lat: ArrayLike) -> Floats:
    """Straight-line (chord) length of a surface distance `arc_m` around latitude `lat`.

    Exact on the sphere of the local Gaussian radius sqrt(M N); on the ellipsoid the chord
    depends on the azimuth only through arc³ / 24R², which leaves under 1.5 mm at 50 km.
    """
    m, n = radii_m(lat)
    rho = np.sqrt(m * n)
    return 2 * rho * np.sin(np.minimum(np.asarray(arc_m, float), math.pi * rho) / (2 * rho))


def geodesic_distance_m(
    lon1: ArrayLike, lat1: ArrayLike, lon2: ArrayLike, lat2: ArrayLike
) -> Floats:
    """Geodesic distance in metres between points on WGS84 (Vincenty), broadcast."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(
        *(np.asarray(v, float) for v in (lon1, lat1, lon2, lat2))
    )
    big_l = np.radians((lon2 - lon1 + 180.0) % 360.0 - 180.0)
    u1 = np.arctan((1 - F) * np.tan(np.radians(lat1)))
    u2 = np.arctan((1 - F) * np.tan(np.radians(lat2)))
    su1, cu1, su2, cu2 = np.sin(u1), np.cos(u1), np.sin(u2), np.cos(u2)
    lam = big_l.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        for _ in range(200):
            sl, cl = np.sin(lam), np.cos(lam)
            sin_s = np.hypot(cu2 * sl, cu1 * su2 - su1 * cu2 * cl)
            cos_s = su1 * su2 + cu1 * cu2 * cl
            sigma = np.arctan2(sin_s, cos_s)
            sin_a = np.where(sin_s == 0, 0.0, cu1 * cu2 * sl / sin_s)
            cos2a = 1 - sin_a * sin_a
            cos2sm = np.where(cos2a == 0, 0.0, cos_s - 2 * su1 * su2 / cos2a)
            c = F / 16 * cos2a * (4 + F * (4 - 3 * cos2a))
            inner = cos2sm + c * cos_s * (-1 + 2 * cos2sm * cos2sm)
            new = big_l + (1 - c) * F * sin_a * (sigma + c * sin_s * inner)
            done = np.all(np.abs(new - lam) < 1e-12)
            lam = new
            if done:
                break
    u2sq = cos2a * (A * A - B * B) / (B * B)
    a_ = 1 + u2sq / 16384 * (4096 + u2sq * (-768 + u2sq * (320 - 175 * u2sq)))
    b_ = u2sq / 1024 * (256 + u2sq * (-128 + u2sq * (74 - 47 * u2sq)))
    d_sigma = (
        b_
        * sin_s
        * (
            cos2sm
            + b_
            / 4
            * (
                cos_s * (-1 + 2 * cos2sm**2)
                - b_ / 6 * cos2sm * (-3 + 4 * sin_s**2) * (-3 + 4 * cos2sm**2)
            )
        )
    )
    return B * a_ * (sigma - d_sigma)


@dataclass(frozen=True)
class LocalFrame:
    """East/north metres on the tangent plane of WGS84 at (lon0, lat0); see the module doc."""

    lon0: float
    lat0: float
    _origin: Floats = field(repr=False, compare=False)
    _axes: Floats = field(repr=False, compare=False)  # rows: east, north, up (unit vectors)

    @classmethod
    def at(cls, lon0: float, lat0: float) -> LocalFrame:
        lam, phi = math.radians(lon0), math.radians(lat0)
        east = [-math.sin(lam), math.cos(lam), 0.0]
        north = [-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi)]
        up = [math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)]
        return cls(lon0, lat0, ecef(lon0, lat0), np.array([east, north, up]))

    def forward(self, lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
        """(x east, y north) in metres of points given in degrees."""
        p = ecef(lon, lat) - self._origin
        return p @ self._axes[0], p @ self._axes[1]

    def inverse(self, x: ArrayLike, y: ArrayLike) -> tuple[Floats, Floats]:
        """(lon, lat) in degrees of the surface point that projects onto (x, y)."""
        x, y = np.asarray(x, float)[..., None], np.asarray(y, float)[..., None]
        east, north, up = self._axes
        q = self._origin + x * east + y * north
        w = np.array([1 / A**2, 1 / A**2, 1 / B**2])
        # Walk from q along the normal `up` to the ellipsoid: the root of a quadratic in t,
        # taken in the cancellation-free form because t is tiny next to the other root.
        alpha = np.sum(w * up * up)
        beta = 2 * np.sum(w * q * up, -1)
        gamma = np.sum(w * q * q, -1) - 1
        t = -2 * gamma / (beta + np.sqrt(beta * beta - 4 * alpha * gamma))
        p = q + t[..., None] * up
        lon = np.degrees(np.arctan2(p[..., 1], p[..., 0]))
        lat = np.degrees(np.arctan2(p[..., 2], (1 - E2) * np.hypot(p[..., 0], p[..., 1])))
        return lon, lat

    def to_metric(self, geom: G) -> G:
        """A lon/lat geometry in this frame's metres, its edges kept as drawn in lon/lat."""
        dense = shapely.segmentize(geom, GEO_STEP_DEG)
        return shapely.transform(dense, lambda c: np.column_stack(self.forward(c[:, 0], c[:, 1])))

    def from_metric(self, geom: G) -> G:
        """A geometry in this frame's metres back in lon/lat, its edges kept straight in metres."""
        dense = shapely.segmentize(geom, METRIC_STEP_M)
        return shapely.transform(dense, lambda c: np.column_stack(self.inverse(c[:, 0], c[:, 1])))
