"""Positions move orders: the tracker the ingest writer calls with the positions it has just
stored, inside the same transaction.

Order of operations per batch: map (site, gateway, device) to vehicles; lock the vehicles'
`vehicle_state` rows in id order; load their active trips (loading or departed), stops,
fences and fence states; for each vehicle, step every watched fence with its fixes in event
time order and update the ETAs (follow.py, no I/O); then lock the departing trips and the
orders concerned, move the orders by the lifecycle table, and write everything with a few
statements per table (consequences.py). A failure of this logic rolls back its savepoint
and is logged and counted: the positions stay stored.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from geofence.eta import EtaParams
from geofence.state import FenceParams, FenceState

from .consequences import apply
from .fence_cache import FenceCache
from .follow import Followed, Rules, follow
from .loading import load
from .rows import NewPosition

log = logging.getLogger(__name__)


class PositionTracker:
    """Use from one thread (it keeps a cache of fence indexes)."""

    def __init__(
        self,
        *,
        arriving_eta_min: float,
        approach_radius_m: float,
        fence_params: FenceParams | None = None,
        eta_params: EtaParams | None = None,
    ) -> None:
        self.rules = Rules(
            arriving_s=arriving_eta_min * 60,
            approach_m=approach_radius_m,
            fence=fence_params or FenceParams(),
            eta=eta_params or EtaParams(),
        )
        self.fences = FenceCache()

    def track(
        self, conn: psycopg.Connection[Any], positions: Sequence[NewPosition]
    ) -> Counter[str]:
        """Track `positions` inside the caller's transaction; counts of what happened. A
        failure of the tracking logic costs a savepoint, never the positions."""
        if not positions:
            return Counter()
        try:
            with conn.transaction():
                return self._track(conn, positions)
        except psycopg.OperationalError:
            raise  # the database is away (or a deadlock): the writer retries the batch
        except Exception:
            log.exception("tracking failed on %d positions; they are stored, untracked",
                          len(positions))  # fmt: skip
            return Counter(tracking_failures=1)

    def _track(
        self, conn: psycopg.Connection[Any], positions: Sequence[NewPosition]
    ) -> Counter[str]:
        db = load(conn.cursor(row_factory=dict_row), positions)
        counts: Counter[str] = Counter()
        by_vehicle: defaultdict[str, list[NewPosition]] = defaultdict(list)
        for p in positions:
            vehicle = db.vehicle_of.get(p.tracker)
            if vehicle is None:
                counts["positions_untracked"] += 1
            else:
                by_vehicle[vehicle].append(p)
        followed: dict[str, tuple[Followed, dict[int, FenceState]]] = {}
        for vehicle_id in sorted(by_vehicle):
            trips = db.trips.get(vehicle_id, [])
            ids = {t.origin_fence_id for t in trips} | {s.fence_id for t in trips for s in t.stops}
            rows = [db.fences[i] for i in sorted(i for i in ids if i in db.fences)]
            index = self.fences.index(rows) if rows else None
            states = {f: s for (v, f), s in db.fence_states.items() if v == vehicle_id}
            fixes = by_vehicle[vehicle_id]
            done = follow(db.vehicles[vehicle_id], trips, fixes, index, states, self.rules)
            followed[vehicle_id] = (done, states)
        if followed:
            counts.update(apply(conn, db, followed))
        return +counts
