"""Write what a batch of positions decided: trips, stops, orders, exceptions, fence states.

Runs under the vehicles' locks (loading.py), then takes the rest in the API's departure order:
the departing trips (id order), then the orders concerned (id order); their packages are
only read (a package changes only under its order's lock). Orders move only through
`orders.lifecycle.order_move`, so late or repeated evidence never moves one backwards.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import Cursor
from psycopg.rows import dict_row

from geofence.eta import is_delayed
from geofence.state import FenceState, Zone
from ingest_service.orders.changes import Changes, OrderRow
from orders.dispatch import PackageOnDock, short_load
from orders.exceptions import ExceptionKind
from orders.lifecycle import Moved, OrderState, PackageState, Trigger, order_move

from .follow import Followed
from .loading import Loaded
from .rows import Intent, StopRow, TripRow, utc

log = logging.getLogger(__name__)
TARGET = {Trigger.DEPARTED: OrderState.IN_TRANSIT, Trigger.APPROACHING: OrderState.ARRIVING,
          Trigger.ARRIVED: OrderState.ARRIVED}  # fmt: skip


@dataclass
class TripOrder:
    row: OrderRow
    stop_seq: int | None
    dest_fence_id: int | None
    packages: list[tuple[int, str, str, str | None]] = field(default_factory=list)
    # (id, sscc, state, loaded_trip) of each package

    @property
    def loaded(self) -> list[str | None]:
        return [p[3] for p in self.packages]

    def on(self, trip: str) -> bool:
        return self.row.trip_id == trip or trip in self.loaded

    def at(self, stop: StopRow) -> bool:
        if self.stop_seq is not None:
            return self.stop_seq == stop.seq
        return self.dest_fence_id == stop.fence_id


def apply(
    conn: psycopg.Connection[Any],
    db: Loaded,
    followed: Mapping[str, tuple[Followed, dict[int, FenceState]]],
) -> Counter[str]:
    counts: Counter[str] = Counter()
    trips = {t.id: t for ts in db.trips.values() for t in ts}
    intents = sorted((i for f, _ in followed.values() for i in f.intents),
                     key=lambda i: (i.at, i.trip_id, i.seq or 0))  # fmt: skip
    cur = conn.cursor(row_factory=dict_row)
    counts["trips_completed"] = _write_trips(cur, trips)
    orders = _lock_orders(cur, sorted({i.trip_id for i in intents}))
    changes = Changes()
    for intent in intents:
        _move(intent, trips[intent.trip_id], orders, changes)
        if intent.trigger is Trigger.DEPARTED:
            _short_loads(intent, trips[intent.trip_id], orders, changes)
    changes.write(conn, [o.row for o in orders.values()], [])
    counts["order_moves"] = len(changes.events)
    for intent in intents:
        if intent.trigger is Trigger.DEPARTED:  # the doors loading it are free again
            cur.execute(
                "UPDATE dock_doors SET trip_id = NULL, assigned_at = now(), assigned_by = %s"
                " WHERE trip_id = %s",
                (intent.actor, intent.trip_id),
            )
    counts["delays_opened"] = _delays(cur, trips)
    for vehicle_id, (f, states) in sorted(followed.items()):
        _write_fences(cur, vehicle_id, f, states)
        counts["fence_transitions"] += len(f.transitions)
        counts["fixes_rejected"] += f.rejected
        for trip_id, why in f.not_completed:
            log.info("trip %s not completed: %s", trip_id, why)
    _write_vehicles(cur, db)
    return counts


def _write_trips(cur: Cursor[dict[str, Any]], trips: Mapping[str, TripRow]) -> int:
    """Departures, then completions (a batch may hold both for one trip), then stops; how
    many trips were completed. A trip moves only from the state it leaves: one the API
    departed first, or a dispatcher cancelled meanwhile, is left as it is."""
    changed = sorted(t.id for t in trips.values() if t.changed)
    if changed:
        cur.execute("SELECT id FROM trips WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (changed,))
        cur.execute(
            "UPDATE trips t SET state = 'departed', departed_at = v.at"
            " FROM unnest(%s::text[], %s::timestamptz[]) AS v(id, at)"
            " WHERE t.id = v.id AND t.state = 'loading'",
            (changed, [trips[t].departed_at for t in changed]),
        )
    completed, done = [t for t in changed if trips[t].completed_at is not None], 0
    if completed:
        cur.execute(
            "UPDATE trips t SET state = 'completed', completed_at = v.at"
            " FROM unnest(%s::text[], %s::timestamptz[]) AS v(id, at)"
            " WHERE t.id = v.id AND t.state = 'departed' RETURNING t.id",
            (completed, [trips[t].completed_at for t in completed]),
        )
        for r in cur.fetchall():
            trip, done = trips[r["id"]], done + 1
            log.info("trip %s completed: %s back at its origin at %s", trip.id,
                     trip.vehicle_id, trip.completed_at)  # fmt: skip
    stops = [s for t in sorted(trips) for s in trips[t].stops if s.changed]
    if stops:
        e = [s.eta for s in stops]
        cur.execute(
            "UPDATE trip_stops s SET state = v.state, arrived_at = coalesce(s.arrived_at, v.arr),"
            " eta = coalesce(v.eta, s.eta), eta_earliest = coalesce(v.early, s.eta_earliest),"
            " eta_latest = coalesce(v.late, s.eta_latest), eta_at = coalesce(v.at, s.eta_at)"
            " FROM unnest(%s::text[], %s::int[], %s::text[], %s::timestamptz[], %s::timestamptz[],"
            " %s::timestamptz[], %s::timestamptz[], %s::timestamptz[])"
            " AS v(trip, seq, state, arr, eta, early, late, at)"
            " WHERE s.trip_id = v.trip AND s.seq = v.seq AND s.state <> 'done'",
            ([s.trip_id for s in stops], [s.seq for s in stops], [s.state for s in stops],
             [s.arrived_at for s in stops],
             [utc(x.arrival_s) if x else None for x in e],
             [utc(x.earliest_s) if x else None for x in e],
             [utc(x.latest_s) if x else None for x in e],
             [utc(x.computed_at_s) if x else None for x in e]),
        )  # fmt: skip
    return done


def _lock_orders(cur: Cursor[dict[str, Any]], trips: list[str]) -> dict[int, TripOrder]:
    if not trips:
        return {}
    cur.execute(
        "SELECT id, number, state, trip_id, origin_site, stop_seq, dest_fence_id FROM orders"
        " WHERE trip_id = ANY(%(t)s) OR id IN (SELECT order_id FROM packages"
        " WHERE loaded_trip = ANY(%(t)s)) ORDER BY id FOR UPDATE",
        {"t": trips},
    )
    orders = {
        r["id"]: TripOrder(OrderRow(r["id"], r["number"], r["state"], r["trip_id"],
                                    r["origin_site"]), r["stop_seq"], r["dest_fence_id"])
        for r in cur.fetchall()
    }  # fmt: skip
    cur.execute(
        "SELECT id, order_id, sscc, state, loaded_trip FROM packages WHERE order_id = ANY(%s)"
        " ORDER BY id",
        (list(orders),),
    )
    for r in cur.fetchall():
        orders[r["order_id"]].packages.append((r["id"], r["sscc"], r["state"], r["loaded_trip"]))
    return orders


def _move(intent: Intent, trip: TripRow, orders: Mapping[int, TripOrder], changes: Changes) -> None:
    trigger = Trigger(intent.trigger)
    stop = next((s for s in trip.stops if s.seq == intent.seq), None)
    for o in orders.values():
        if not o.on(trip.id):
            continue
        if trigger is Trigger.DEPARTED:
            if not o.loaded or any(t != trip.id for t in o.loaded):
                continue  # not all of it is on board: it stays (the API reports short loads)
        elif stop is None or not o.at(stop):
            continue
        outcome = order_move(OrderState(o.row.state), trigger, TARGET[trigger])
        if isinstance(outcome, Moved):
            detail = {"trip": trip.id, "vehicle": trip.vehicle_id, "stop": intent.seq,
                      **intent.detail}  # fmt: skip
            changes.event(o.row.id, "state", from_state=outcome.before, to_state=outcome.after,
                          trigger=trigger, evidence=intent.evidence, actor=intent.actor,
                          at=intent.at, detail=detail)  # fmt: skip
            o.row.state, o.row.changed = outcome.after, True


def _short_loads(
    intent: Intent, trip: TripRow, orders: Mapping[int, TripOrder], changes: Changes
) -> None:
    """As when the API departs a trip: a short_load per planned package left behind (the
    same dedup key, so whichever departs it first raises it)."""
    on_dock = {
        PackageOnDock(sscc, o.row.number, OrderState(o.row.state), o.row.trip_id, loaded,
                      PackageState(state)): (o.row.id, package_id)
        for o in orders.values() for package_id, sscc, state, loaded in o.packages
    }  # fmt: skip
    for view in short_load(on_dock, trip.id):
        order_id, package_id = on_dock[view]
        where = f"on trip {view.loaded_trip}" if view.loaded_trip else "not loaded"
        summary = (
            f"trip {trip.id} left its warehouse without package {view.sscc} of order"
            f" {view.order_number} ({where}): find it and plan it on another trip"
        )
        changes.exceptions.append(
            (ExceptionKind.SHORT_LOAD, summary, order_id, package_id, trip.vehicle_id, trip.id,
             None, intent.evidence, f"rule:{ExceptionKind.SHORT_LOAD}",
             f"short_load:{trip.id}:{package_id}")
        )  # fmt: skip


def _delays(cur: Cursor[dict[str, Any]], trips: Mapping[str, TripRow]) -> int:
    """A delay exception, once per order and trip, when its stop's newest ETA passes its
    window (the stop may have been reached later in the same batch: that ETA was the last
    before arriving)."""
    timed = {(t.id, s.seq): (t, s) for t in trips.values() for s in t.stops if s.eta}
    if not timed:
        return 0
    ids = sorted({t for t, _ in timed})
    cur.execute(
        "SELECT id, number, trip_id, stop_seq, dest_fence_id, window_end FROM orders"
        " WHERE (trip_id = ANY(%(t)s) OR id IN (SELECT order_id FROM packages"
        " WHERE loaded_trip = ANY(%(t)s))) AND window_end IS NOT NULL"
        " AND state IN ('in_transit', 'arriving', 'arrived') ORDER BY id",
        {"t": ids},
    )
    opened = 0
    for r in cur.fetchall():
        for trip, stop in timed.values():
            at_stop = r["stop_seq"] == stop.seq if r["stop_seq"] is not None else (
                r["dest_fence_id"] == stop.fence_id)  # fmt: skip
            if r["trip_id"] not in (trip.id, None) or not at_stop or stop.eta is None:
                continue
            if not is_delayed(stop.eta, window_end_s=r["window_end"].timestamp()):
                continue
            summary = (f"order {r['number']} on trip {trip.id}: ETA {utc(stop.eta.arrival_s):%H:%M}"
                       f" UTC is past its window end {r['window_end']:%H:%M %Z}; tell the"
                       " customer or re-plan")  # fmt: skip
            cur.execute(
                "INSERT INTO exceptions (kind, summary, order_id, vehicle_id, trip_id,"
                " evidence_event_id, opened_by, dedup_key) VALUES ('delay', %s, %s, %s, %s, %s,"
                " 'rule:delay', %s) ON CONFLICT (dedup_key) DO NOTHING",
                (summary, r["id"], trip.vehicle_id, trip.id, stop.eta_evidence,
                 f"delay:{trip.id}:{r['id']}"),
            )  # fmt: skip
            opened += cur.rowcount
    return opened


def _write_fences(
    cur: Cursor[dict[str, Any]], vehicle: str, f: Followed, states: Mapping[int, FenceState]
) -> None:
    changed = sorted(f.changed)
    if changed:
        cur.execute(
            "INSERT INTO vehicle_fence_state (vehicle_id, fence_id, state, inside)"
            " SELECT %s, v.fence, v.state::jsonb, v.inside"
            " FROM unnest(%s::bigint[], %s::text[], %s::bool[]) AS v(fence, state, inside)"
            " ON CONFLICT (vehicle_id, fence_id) DO UPDATE SET state = EXCLUDED.state,"
            " inside = EXCLUDED.inside, updated_at = now()",
            (vehicle, changed, [json.dumps(states[i].to_json()) for i in changed],
             [states[i].side is Zone.IN for i in changed]),
        )  # fmt: skip
    if f.transitions:
        cur.executemany(
            "INSERT INTO fence_transitions (vehicle_id, fence_id, kind, at, confirmed_at,"
            " initial, evidence_event_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(vehicle, fence, tr.kind.value, utc(tr.at_s), utc(tr.confirmed_at_s), tr.initial,
              fix.event_id) for fence, tr, fix in f.transitions],
        )  # fmt: skip


def _write_vehicles(cur: Cursor[dict[str, Any]], db: Loaded) -> None:
    rows = sorted(db.vehicles.values(), key=lambda v: v.id)
    if not rows:
        return
    last = [v.last for v in rows]
    cur.execute(
        "UPDATE vehicle_state s SET speed_state = v.speed::jsonb, updated_at = now(),"
        " last_fix_at = coalesce(v.at, s.last_fix_at),"
        " lat = CASE WHEN v.at IS NULL THEN s.lat ELSE v.lat END,"
        " lon = CASE WHEN v.at IS NULL THEN s.lon ELSE v.lon END,"
        " speed_mps = CASE WHEN v.at IS NULL THEN s.speed_mps ELSE v.speed_mps END,"
        " heading_deg = CASE WHEN v.at IS NULL THEN s.heading_deg ELSE v.heading END"
        " FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::float8[], %s::float8[],"
        " %s::float4[], %s::float4[]) AS v(id, speed, at, lat, lon, speed_mps, heading)"
        " WHERE s.vehicle_id = v.id",
        ([v.id for v in rows], [json.dumps(v.speed.to_json()) for v in rows],
         [p.time if p else None for p in last], [p.lat if p else None for p in last],
         [p.lon if p else None for p in last], [p.speed_mps if p else None for p in last],
         [p.heading_deg if p else None for p in last]),
    )  # fmt: skip
