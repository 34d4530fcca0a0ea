"""When will a vehicle reach a stop? An ETA with a confidence band, updated per fix. Pure.

Remaining distance: along the planned route when there is one (the fix and the stop are
projected onto the polyline; the distance along it between them, plus the fix's distance
off the route to get back onto it); if the fix is more than `max_off_route_m` off the route,
or there is no route, the great-circle (haversine, on the WGS84 mean radius) distance times
a road factor (1.3 by default: roads are longer than the straight line).

Speed: exponential smoothing of the fixes' speeds on event time (weight of a new sample
1 - exp(-dt / smoothing_s), so irregular fix rates weigh alike), with an exponentially
weighted variance beside it. A fix without a speed contributes the speed implied by its
displacement from the previous fix. The ETA divides by max(smoothed speed, floor_mps): a
stopped truck gets a long but finite ETA, as if it would soon crawl on at the floor speed.

Band: the speeds mean * (1 +/- band_rel) +/- band_sigmas * sigma bound the earliest and
latest arrival; band_rel covers a bias every sample shares (with 15 %, any speed noise
bounded by 10 % keeps the true arrival inside). The latest end uses the lower
`band_floor_mps`, so a stopped truck's band stays wide.

Times are POSIX seconds of event time. A fix older than the newest one seen does not
update anything (its position is stale); `update` returns no ETA for it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EARTH_RADIUS_M = 6_371_008.8  # WGS84 mean radius R1 = (2a + b) / 3
ROAD_FACTOR = 1.3

LatLon = tuple[float, float]


def haversine_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance between two (lat, lon) points in degrees, in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True, slots=True)
class Route:
    """A planned route: a polyline of (lat, lon) and the distance along it at each vertex."""

    points: tuple[LatLon, ...]
    along_m: tuple[float, ...]

    @classmethod
    def of(cls, points: Sequence[LatLon]) -> Route:
        if len(points) < 2:
            raise ValueError(f"a route needs at least 2 points, got {len(points)}")
        along = [0.0]
        for a, b in itertools.pairwise(points):
            along.append(along[-1] + haversine_m(a, b))
        return cls(tuple((float(lat), float(lon)) for lat, lon in points), tuple(along))

    @property
    def length_m(self) -> float:
        return self.along_m[-1]

    def project(self, point: LatLon) -> tuple[float, float]:
        """(distance along the route, distance off it) of the nearest point on the route.

        Each segment is flattened on a local equirectangular plane around its start, which
        is accurate to far better than a GPS fix over segments of a few kilometres. On a
        tie (a route passing the same place twice) the earlier segment wins."""
        best = (math.inf, 0.0)
        for i, (a, b) in enumerate(itertools.pairwise(self.points)):
            kx = EARTH_RADIUS_M * math.cos(math.radians((a[0] + b[0]) / 2))
            bx, by = math.radians(b[1] - a[1]) * kx, math.radians(b[0] - a[0]) * EARTH_RADIUS_M
            px = math.radians(point[1] - a[1]) * kx
            py = math.radians(point[0] - a[0]) * EARTH_RADIUS_M
            length2 = bx * bx + by * by
            u = 0.0 if length2 == 0 else min(1.0, max(0.0, (px * bx + py * by) / length2))
            off = math.hypot(px - u * bx, py - u * by)
            if off < best[0]:
                seg = self.along_m[i + 1] - self.along_m[i]
                best = (off, self.along_m[i] + u * seg)
        return best[1], best[0]


@dataclass(frozen=True, slots=True)
class EtaParams:
    road_factor: float = ROAD_FACTOR
    max_off_route_m: float = 500.0
    smoothing_s: float = 120.0
    floor_mps: float = 2.0
    band_floor_mps: float = 1.0
    band_rel: float = 0.15
    band_sigmas: float = 2.0

    def __post_init__(self) -> None:
        for name in ("road_factor", "max_off_route_m", "smoothing_s", "floor_mps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ETA parameter {name}={value!r}: must be a number > 0")
        if not 0 < self.band_floor_mps <= self.floor_mps:
            raise ValueError(
                f"ETA parameter band_floor_mps={self.band_floor_mps!r}: must be > 0 and at most"
                f" floor_mps={self.floor_mps!r}, or the band would not contain the ETA"
            )
        if not (0 <= self.band_rel < 1 and self.band_sigmas >= 0):
            raise ValueError("ETA parameters: band_rel must be in [0, 1), band_sigmas >= 0")


@dataclass(frozen=True, slots=True)
class SpeedState:
    """The smoothed speed of one vehicle and its last fix: what to persist between fixes."""

    time_s: float | None = None
    lat: float | None = None
    lon: float | None = None
    mean_mps: float | None = None
    var_m2s2: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "time_s": self.time_s,
            "lat": self.lat,
            "lon": self.lon,
            "mean_mps": self.mean_mps,
            "var_m2s2": self.var_m2s2,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SpeedState:
        if data.get("v") != 1:
            raise ValueError(f"speed state version {data.get('v')!r}: expected 1")
        opt = {k: None if data[k] is None else float(data[k]) for k in ("time_s", "lat", "lon")}
        mean = data["mean_mps"]
        return cls(**opt, mean_mps=None if mean is None else float(mean), var_m2s2=data["var_m2s2"])


@dataclass(frozen=True, slots=True)
class Eta:
    computed_at_s: float  # the event time of the fix it was computed from
    remaining_m: float
    speed_mps: float  # the smoothed speed used, after the floor
    arrival_s: float
    earliest_s: float
    latest_s: float
    along_route: bool


def remaining_m(
    position: LatLon, stop: LatLon, route: Route | None, params: EtaParams
) -> tuple[float, bool]:
    """(metres left to the stop, whether measured along the route)."""
    if route is not None:
        along, off = route.project(position)
        if off <= params.max_off_route_m:
            stop_along, _ = route.project(stop)
            return max(0.0, stop_along - along) + off, True
    return haversine_m(position, stop) * params.road_factor, False


def smooth_speed(
    state: SpeedState,
    *,
    time_s: float,
    position: LatLon,
    speed_mps: float | None,
    params: EtaParams,
) -> SpeedState:
    """The state after one fix; a fix not newer than the last one changes nothing."""
    if state.time_s is not None and time_s <= state.time_s:
        return state
    sample = speed_mps
    if sample is None and state.time_s is not None and state.lat is not None:
        assert state.lon is not None
        sample = haversine_m((state.lat, state.lon), position) / (time_s - state.time_s)
    mean, var = state.mean_mps, state.var_m2s2
    if sample is not None:
        if mean is None or state.time_s is None:
            mean, var = sample, 0.0
        else:
            alpha = 1 - math.exp(-(time_s - state.time_s) / params.smoothing_s)
            diff = sample - mean
            mean += alpha * diff
            var = (1 - alpha) * (var + alpha * diff * diff)
    return SpeedState(time_s, position[0], position[1], mean, var)


def estimate(
    *, time_s: float, remaining: float, along_route: bool, speed: SpeedState, params: EtaParams
) -> Eta:
    """The ETA and its band from the metres left and the smoothed speed."""
    mean = 0.0 if speed.mean_mps is None else speed.mean_mps
    spread = params.band_sigmas * math.sqrt(max(0.0, speed.var_m2s2))
    v = max(mean, params.floor_mps)
    fast = max(mean * (1 + params.band_rel) + spread, params.floor_mps)
    slow = max(mean * (1 - params.band_rel) - spread, params.band_floor_mps)
    return Eta(
        computed_at_s=time_s,
        remaining_m=remaining,
        speed_mps=v,
        arrival_s=time_s + remaining / v,
        earliest_s=time_s + remaining / fast,
        latest_s=time_s + remaining / slow,
        along_route=along_route,
    )


def update(
    state: SpeedState,
    *,
    time_s: float,
    position: LatLon,
    speed_mps: float | None,
    stop: LatLon,
    route: Route | None = None,
    params: EtaParams,
) -> tuple[SpeedState, Eta | None]:
    """One fix in: the new speed state and the new ETA (None for a fix older than the last)."""
    if state.time_s is not None and time_s <= state.time_s:
        return state, None
    speed = smooth_speed(
        state, time_s=time_s, position=position, speed_mps=speed_mps, params=params
    )
    left, along = remaining_m(position, stop, route, params)
    return speed, estimate(
        time_s=time_s, remaining=left, along_route=along, speed=speed, params=params
    )


def is_delayed(
    eta: Eta, *, window_end_s: float, grace_s: float = 0.0, certain: bool = False
) -> bool:
    """Whether the ETA passes the promised window's end (by more than grace_s).

    `certain=True` asks whether even the earliest end of the band is past it."""
    at = eta.earliest_s if certain else eta.arrival_s
    return at > window_end_s + grace_s


def is_stale(last_fix_s: float | None, *, now_s: float, silent_s: float) -> bool:
    """Whether a tracker has been silent for silent_s: no fix, or the newest is that old.

    Pass the newest fix's event time: a gateway replaying a buffer of old fixes still
    leaves the vehicle's position stale."""
    return last_fix_s is None or now_s - last_fix_s >= silent_s
