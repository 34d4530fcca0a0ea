"""Load (and lock) what a batch of positions may move: vehicles, trips, stops, fence states.

Lock order, the same in every worker: the vehicles' `vehicle_state` rows in vehicle-id order,
first of all. Everything kept per vehicle (its `vehicle_fence_state` rows, its speed state)
is read and written only under that row's lock, so those rows need no lock of their own: two
workers with fixes of one vehicle take turns on the vehicle row, and the second sees the
first one's fence states. Trips, stops and orders come later (see consequences.py), in the
order the API's departure takes them: trips, then orders in id order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Cursor

from geofence.eta import Route, SpeedState
from geofence.state import FenceState

from .rows import NewPosition, StopRow, TripRow, VehicleRow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FenceRow:
    id: int
    version: int
    kind: str
    feature: Mapping[str, Any]


@dataclass
class Loaded:
    vehicle_of: dict[tuple[str, str, str], str] = field(default_factory=dict)
    vehicles: dict[str, VehicleRow] = field(default_factory=dict)
    trips: dict[str, list[TripRow]] = field(default_factory=dict)  # by vehicle
    fences: dict[int, FenceRow] = field(default_factory=dict)
    fence_states: dict[tuple[str, int], FenceState] = field(default_factory=dict)


def load(cur: Cursor[dict[str, Any]], positions: Sequence[NewPosition]) -> Loaded:
    db = Loaded()
    trackers = sorted({p.tracker for p in positions})
    cur.execute(
        "SELECT site, gateway, device, vehicle_id FROM trackers WHERE (site, gateway, device)"
        " IN (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
        ([t[0] for t in trackers], [t[1] for t in trackers], [t[2] for t in trackers]),
    )
    for r in cur.fetchall():
        db.vehicle_of[(r["site"], r["gateway"], r["device"])] = r["vehicle_id"]
    vehicles = sorted(set(db.vehicle_of.values()))
    if not vehicles:
        return db
    # The row must exist before it can be locked; inserted in id order like the lock below.
    cur.execute(
        "INSERT INTO vehicle_state (vehicle_id) SELECT v FROM unnest(%s::text[]) AS v"
        " ORDER BY v ON CONFLICT DO NOTHING",
        (vehicles,),
    )
    cur.execute(
        "SELECT vehicle_id, last_fix_at, speed_state FROM vehicle_state"
        " WHERE vehicle_id = ANY(%s) ORDER BY vehicle_id FOR UPDATE",
        (vehicles,),
    )
    for r in cur.fetchall():
        speed = _speed_state(r["vehicle_id"], r["speed_state"])
        db.vehicles[r["vehicle_id"]] = VehicleRow(r["vehicle_id"], r["last_fix_at"], speed)
    cur.execute(
        "SELECT id, vehicle_id, state, departed_at, origin_fence_id, route FROM trips"
        " WHERE vehicle_id = ANY(%s) AND state IN ('loading', 'departed') ORDER BY id",
        (vehicles,),
    )
    trips: dict[str, TripRow] = {}
    for r in cur.fetchall():
        trip = TripRow(r["id"], r["vehicle_id"], r["state"], r["departed_at"],
                       r["origin_fence_id"], _route(r["id"], r["route"]))  # fmt: skip
        trips[trip.id] = trip
        db.trips.setdefault(trip.vehicle_id, []).append(trip)
    fence_ids = {t.origin_fence_id for t in trips.values() if t.origin_fence_id is not None}
    if trips:
        cur.execute(
            "SELECT trip_id, seq, fence_id, state, arrived_at FROM trip_stops"
            " WHERE trip_id = ANY(%s) ORDER BY trip_id, seq",
            (sorted(trips),),
        )
        for r in cur.fetchall():
            trips[r["trip_id"]].stops.append(StopRow(**r))
            fence_ids.add(r["fence_id"])
    if not fence_ids:
        return db
    cur.execute(
        "SELECT id, version, kind, feature FROM geofences WHERE id = ANY(%s) AND active",
        (sorted(fence_ids),),
    )
    db.fences = {r["id"]: FenceRow(**r) for r in cur.fetchall()}
    cur.execute(
        "SELECT vehicle_id, fence_id, state FROM vehicle_fence_state"
        " WHERE vehicle_id = ANY(%s) AND fence_id = ANY(%s)",
        (vehicles, sorted(db.fences)),
    )
    for r in cur.fetchall():
        try:
            state = FenceState.from_json(r["state"])
        except ValueError as err:
            log.warning("vehicle %s, fence %s: %s; starting afresh", r["vehicle_id"],
                        r["fence_id"], err)  # fmt: skip
            continue
        db.fence_states[(r["vehicle_id"], r["fence_id"])] = state
    return db


def _speed_state(vehicle: str, data: Mapping[str, Any] | None) -> SpeedState:
    if not data:
        return SpeedState()
    try:
        return SpeedState.from_json(data)
    except (KeyError, TypeError, ValueError) as err:
        log.warning("vehicle %s: speed state unreadable (%r); starting afresh", vehicle, err)
        return SpeedState()


def _route(trip: str, data: Mapping[str, Any] | None) -> Route | None:
    """A GeoJSON LineString (or a Feature holding one) as a Route; None if absent or bad."""
    if not data:
        return None
    geometry = data.get("geometry", data) if data.get("type") == "Feature" else data
    try:
        if geometry.get("type") != "LineString":
            raise ValueError(f"a {geometry.get('type')} is not a LineString")
        return Route.of([(float(lat), float(lon)) for lon, lat, *_ in geometry["coordinates"]])
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        log.warning("trip %s: route ignored (%s); ETAs use the great circle", trip, err)
        return None
