"""Follow one vehicle through a batch of its fixes: fences, ETAs, and what they mean.

No I/O: takes the rows loaded under the vehicle's lock and the fence index, steps the
hysteresis machine (`geofence.state.step`) per (vehicle, fence) in event-time order, updates
the smoothed speed and each pending stop's ETA (`geofence.eta`), and returns the confirmed
transitions and the intents for orders (departed, approaching, arrived). A trip's origin
fence is watched while it loads (its exit departs the trip) and once it has departed (its
entry, with every stop reached, completes it: `orders.trips.complete_on_return`). Trips and
stops are updated in place; orders are moved later, under their own locks (consequences.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from geofence import FenceIndex
from geofence.eta import EtaParams, estimate, remaining_m, smooth_speed, update
from geofence.state import FenceFix, FenceParams, FenceState, Kind, Transition, Verdict, step
from orders.lifecycle import Trigger
from orders.trips import Completed, StopState, TripState, complete_on_return

from .rows import Intent, NewPosition, TripRow, VehicleRow, utc

OPEN_STOP = ("pending", "arriving")


@dataclass(frozen=True, slots=True)
class Rules:
    arriving_s: float  # a stop is "arriving" when its ETA is closer than this...
    approach_m: float  # ...or the vehicle is this close to its fence
    fence: FenceParams = field(default_factory=FenceParams)
    eta: EtaParams = field(default_factory=EtaParams)


@dataclass
class Followed:
    transitions: list[tuple[int, Transition, NewPosition]] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)
    changed: set[int] = field(default_factory=set)  # fences whose state changed
    not_completed: list[tuple[str, str]] = field(default_factory=list)  # (trip, why not)
    rejected: int = 0  # late fixes the fence machine could not take


def follow(
    vehicle: VehicleRow,
    trips: Sequence[TripRow],
    fixes: Sequence[NewPosition],
    index: FenceIndex | None,
    states: dict[int, FenceState],
    rules: Rules,
) -> Followed:
    """Step `states` (fence id -> state, updated in place) with `fixes`, oldest first."""
    out = Followed()
    fixes = sorted(fixes, key=lambda f: (f.time, f.event_id))
    usable = {int(f.id) for f in index.fences} if index is not None else set()
    watched = {t.origin_fence_id for t in trips if t.state in ("loading", "departed")}
    watched |= {s.fence_id for t in trips for s in t.stops}
    fence_ids = sorted(usable & {f for f in watched if f is not None})
    dist = np.zeros((len(fixes), 0))
    if fence_ids and index is not None:
        n = len(fence_ids)
        dist = index.distances_to_edge_m(
            np.repeat([f.lon for f in fixes], n),
            np.repeat([f.lat for f in fixes], n),
            [str(i) for i in fence_ids] * len(fixes),
        ).reshape(len(fixes), n)
    for k, fix in enumerate(fixes):
        d = dict(zip(fence_ids, dist[k].tolist(), strict=True))
        for fence_id in fence_ids:
            before = states.get(fence_id, FenceState())
            stepped = step(before, FenceFix(fix.time_s, d[fence_id], fix.hdop), rules.fence)
            out.rejected += stepped.verdict in (Verdict.TOO_OLD, Verdict.CONFLICTS)
            if stepped.state != before:
                states[fence_id] = stepped.state
                out.changed.add(fence_id)
            for tr in stepped.transitions:
                out.transitions.append((fence_id, tr, fix))
                _react(fence_id, tr, fix, trips, out)
        _eta(vehicle, trips, fix, d, index, usable, rules, out)
        if vehicle.last_fix_at is None or fix.time > vehicle.last_fix_at:
            vehicle.last, vehicle.last_fix_at = fix, fix.time
    return out


def _react(fence_id: int, tr: Transition, fix: NewPosition, trips: Sequence[TripRow],
           out: Followed) -> None:  # fmt: skip
    at = utc(tr.at_s)
    detail = {"fence": fence_id, "confirmed_at": utc(tr.confirmed_at_s).isoformat()}
    for trip in trips:
        if tr.kind is Kind.EXITED and trip.state == "loading" and trip.origin_fence_id == fence_id:
            trip.state, trip.departed_at, trip.changed = "departed", at, True
            out.intents.append(Intent(Trigger.DEPARTED, trip.id, None, at, fix.event_id,
                                      fix.actor, detail))  # fmt: skip
        if tr.kind is not Kind.ENTERED or trip.state != "departed":
            continue
        if trip.departed_at is not None and at < trip.departed_at:
            continue  # inside a stop's fence before leaving: not an arrival
        for stop in trip.stops:
            if stop.fence_id == fence_id and stop.state in OPEN_STOP:
                stop.state, stop.arrived_at, stop.changed = "arrived", at, True
                out.intents.append(Intent(Trigger.ARRIVED, trip.id, stop.seq, at, fix.event_id,
                                          fix.actor, detail))  # fmt: skip
        if trip.origin_fence_id == fence_id:
            _come_back(trip, tr, out)


def _come_back(trip: TripRow, tr: Transition, out: Followed) -> None:
    """The vehicle entered its departed trip's origin fence: completed, if every stop is
    reached (the pure rule decides; the stops above may just have been reached)."""
    departed_s = trip.departed_at.timestamp() if trip.departed_at is not None else None
    stops = [(s.seq, StopState(s.state)) for s in trip.stops]
    end = complete_on_return(TripState(trip.state), departed_s, stops, tr.at_s)
    if isinstance(end, Completed):
        trip.state, trip.completed_at, trip.changed = "completed", utc(end.at_s), True
    else:
        out.not_completed.append((trip.id, end.reason))


def _eta(
    vehicle: VehicleRow,
    trips: Sequence[TripRow],
    fix: NewPosition,
    dist: dict[int, float],
    index: FenceIndex | None,
    usable: set[int],
    rules: Rules,
    out: Followed,
) -> None:
    """The smoothed speed, then for each departed trip the ETA of its open stops in order
    (the next one from the fix, each later one a leg further), and the approach rule."""
    here = (fix.lat, fix.lon)
    speed = smooth_speed(vehicle.speed, time_s=fix.time_s, position=here,
                         speed_mps=fix.speed_mps, params=rules.eta)  # fmt: skip
    for trip in trips:
        stops = [s for s in trip.stops if s.state in OPEN_STOP and s.fence_id in usable]
        if trip.state != "departed" or not stops or index is None:
            continue
        centres = [_latlon(index, s.fence_id) for s in stops]
        speed, eta = update(vehicle.speed, time_s=fix.time_s, position=here,
                            speed_mps=fix.speed_mps, stop=centres[0], route=trip.route,
                            params=rules.eta)  # fmt: skip
        if eta is None:
            return  # a fix older than the newest one: its position is stale
        left = eta.remaining_m
        for s, prev, centre in zip(stops, [centres[0], *centres], centres, strict=False):
            if s is not stops[0]:
                leg, along = remaining_m(prev, centre, trip.route, rules.eta)
                left += leg
                s.eta = estimate(time_s=fix.time_s, remaining=left, along_route=along,
                                 speed=speed, params=rules.eta)  # fmt: skip
            else:
                s.eta = eta
            s.eta_evidence, s.changed = fix.event_id, True
        first = stops[0]
        near = dist.get(first.fence_id, math.inf) < rules.approach_m
        if first.state == "pending" and (eta.arrival_s - fix.time_s < rules.arriving_s or near):
            first.state = "arriving"
            detail = {"eta": utc(eta.arrival_s).isoformat(), "remaining_m": round(eta.remaining_m)}
            out.intents.append(Intent(Trigger.APPROACHING, trip.id, first.seq, fix.time,
                                      fix.event_id, fix.actor, detail))  # fmt: skip
    vehicle.speed = speed


def _latlon(index: FenceIndex, fence_id: int) -> tuple[float, float]:
    lon, lat = index.fence(str(fence_id)).centre
    return lat, lon
