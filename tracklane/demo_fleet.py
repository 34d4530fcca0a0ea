"""The demo's fleet: two trucks driving their loaded trips out to the customers and home.

Each truck carries a GNSS receiver (a `simulators.gps` simulator, started by demo_devices.py
parked in the yard) and drives its own route out of the warehouse yard near 52.0N 4.4E; its
customers live along that route (demo_warehouse.py's CUSTOMERS). `lay_out` puts the
geography in the database: the yard's `warehouse` fence, the trackers (which receiver
reports for which truck), and each trip's origin fence, route, driver and stops in the order
driven. `Fleet.run` then drives: a truck stands in the yard until the floor has loaded its
trip, drives to each stop and stands there until ingest has recorded the arrival, and its
driver confirms the stop's orders delivered (the function behind POST
/api/v1/orders/{number}/deliver). After the last stop it drives back to the yard the way it
came and waits there until ingest has completed the trip. Departure, approach, arrival and
completion are never written here: ingest derives them from the positions alone, through the
fences, as in production.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from geofence.shapes import FenceKind, circle_fence
from ingest_service.dispatch.errors import Refused
from ingest_service.geo.delivery import DeliveryIn, deliver_order
from ingest_service.geo.fences import insert_fence
from ingest_service.geo.stops import StopIn, StopsIn, set_stops
from simulators.gps import GpsSimulator
from simulators.routes import DEMO_ROUTE, DEMO_ROUTE_SOUTH, LatLon

log = logging.getLogger(__name__)
SITE = "wh1"
YARD: LatLon = DEMO_ROUTE[0]  # both routes start (and end) in the warehouse yard
YARD_RADIUS_M = 60.0
YARD_FENCE = "demo yard wh1"
# A demo choice, not a recommendation: fence crossings are confirmed after this many seconds
# (TRACKLANE_FENCE_MIN_DWELL_S, 60 by default) so that a two-minute demo sees every stop.
FENCE_DWELL_S = 3.0
SPEED_MPS = 18.0  # a brisk 65 km/h between stops, for the same reason
UNLOAD_S = 2.0  # standing at a stop after the arrival, before the driver confirms delivery
ARRIVAL_TIMEOUT_S = 20.0  # no arrival recorded by then: drive on, the stop undelivered
COMPLETION_TIMEOUT_S = 20.0  # back in the yard, no completion recorded by then: give up
POLL_S = 0.25
NOT_LOADED = ["created", "picking", "picked", "packed"]
LOADED = "SELECT count(*) = 0 FROM orders WHERE trip_id = %s AND state = ANY(%s)"
ARRIVED = "SELECT arrived_at IS NOT NULL FROM trip_stops WHERE trip_id = %s AND seq = %s"
COMPLETED = "SELECT state = 'completed' FROM trips WHERE id = %s"


@dataclass(frozen=True, slots=True)
class Truck:
    vehicle: str
    device: str  # its GNSS receiver, as the truck's gateway config names it
    gateway: str
    driver: str
    route: tuple[LatLon, ...]


FLEET = (
    Truck("truck-1", "truck-1-gps", "truck-1", "demo-driver-1", DEMO_ROUTE),
    Truck("truck-2", "truck-2-gps", "truck-2", "demo-driver-2", DEMO_ROUTE_SOUTH),
)


def truck_with(device: str) -> Truck | None:
    """The fleet's truck whose receiver `device` is, if any."""
    return next((t for t in FLEET if t.device == device), None)


def truck_of(vehicle: str) -> Truck:
    return next(t for t in FLEET if t.vehicle == vehicle)


async def _yard_fence(conn: psycopg.AsyncConnection[Any]) -> int:
    """The yard's warehouse fence: the one an earlier demo drew, or a new one."""
    cur = await conn.execute(
        "SELECT id FROM geofences WHERE kind = 'warehouse' AND site = %s AND name = %s"
        " AND active ORDER BY id LIMIT 1",
        (SITE, YARD_FENCE),
    )
    row = await cur.fetchone()
    if row is not None:
        return int(row[0])
    fence = circle_fence("new", FenceKind.WAREHOUSE, YARD[1], YARD[0], YARD_RADIUS_M)
    return await insert_fence(conn, fence, name=YARD_FENCE, site=SITE, actor="demo")


async def lay_out(
    conn: psycopg.AsyncConnection[Any], trips: dict[str, str], stops: dict[str, list[str]]
) -> None:
    """Trackers, the yard's fence, and each trip's origin, route, driver and stops (`stops`:
    trip -> its order numbers in the order driven, one stop each)."""
    await conn.execute(
        # Trips an earlier, interrupted demo (or a wave whose truck never made it home) left
        # open would follow the trucks too.
        "UPDATE trips SET state = 'completed', completed_at = now() WHERE vehicle_id = ANY(%s)"
        " AND state IN ('planned', 'loading', 'departed') AND NOT (id = ANY(%s))",
        ([t.vehicle for t in FLEET], list(trips)),
    )
    yard = await _yard_fence(conn)
    for truck in FLEET:
        await conn.execute(
            "INSERT INTO trackers (site, gateway, device, vehicle_id, assigned_by)"
            " VALUES (%s, %s, %s, %s, 'demo') ON CONFLICT (site, gateway, device) DO UPDATE"
            " SET vehicle_id = EXCLUDED.vehicle_id, assigned_at = now(), assigned_by = 'demo'",
            (SITE, truck.gateway, truck.device, truck.vehicle),
        )
    for trip, vehicle in trips.items():
        truck = truck_of(vehicle)
        route = {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in truck.route]}
        await conn.execute(
            "UPDATE trips SET origin_fence_id = %s, route = %s, driver = %s WHERE id = %s",
            (yard, Jsonb(route), truck.driver, trip),
        )
        body = StopsIn(stops=[StopIn(orders=[n]) for n in stops.get(trip, [])])
        await set_stops(conn, trip, body, actor="demo")


@dataclass(frozen=True, slots=True)
class Stop:
    seq: int
    at: LatLon
    orders: Sequence[str]


class Fleet:
    """Drives each truck of `trips` (trip -> vehicle) by its receiver in `receivers`."""

    def __init__(self, database_url: str, trips: dict[str, str], receivers: dict[str, Any]):
        self.database_url = database_url
        self.trips = trips
        self.gps: dict[str, GpsSimulator] = {
            t.vehicle: receivers[t.device] for t in FLEET if t.device in receivers
        }
        self.delivered = 0
        self.completed = 0  # trips ingest completed on the truck's return

    async def run(self, stop: asyncio.Event) -> None:
        drives = [
            asyncio.create_task(self._drive(trip, vehicle), name=f"drive-{vehicle}")
            for trip, vehicle in self.trips.items()
            if vehicle in self.gps
        ]
        stopping = asyncio.create_task(stop.wait())
        pending = set(drives)
        while pending and not stop.is_set():
            done, _ = await asyncio.wait(pending | {stopping}, return_when="FIRST_COMPLETED")
            pending -= done
        stopping.cancel()
        for task in drives:
            task.cancel()
        for task, outcome in zip(drives, await asyncio.gather(*drives, return_exceptions=True),
                                 strict=True):  # fmt: skip
            if isinstance(outcome, Exception):
                log.error("demo: %s failed: %r", task.get_name(), outcome)
        for gps in self.gps.values():
            gps.park()

    async def _drive(self, trip: str, vehicle: str) -> None:
        gps, driver = self.gps[vehicle], truck_of(vehicle).driver
        url = self.database_url
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            gps.follow(truck_of(vehicle).route)  # from the yard, where it stands
            await self._until(conn, LOADED, (trip, NOT_LOADED))
            log.info("demo: %s loaded, %s leaves the yard", trip, vehicle)
            for s in await self._stops(conn, trip):
                await gps.drive_to(gps.walker.along_m(s.at), SPEED_MPS)
                if not await self._within(conn, ARRIVED, (trip, s.seq), ARRIVAL_TIMEOUT_S):
                    log.warning("demo: %s stands at stop %d of %s, but no arrival was recorded"
                                " in %g s; driving on", vehicle, s.seq, trip,
                                ARRIVAL_TIMEOUT_S)  # fmt: skip
                    continue
                await asyncio.sleep(UNLOAD_S)
                for number in s.orders:
                    await self._deliver(conn, number, gps, driver)
            log.info("demo: %s has made every stop of %s; back to the yard", vehicle, trip)
            way_back = gps.walker.back_to_start(gps.odometer_m)
            if len(way_back) > 1:
                gps.follow(way_back, loop=False)
                await gps.drive_to(gps.walker.length_m, SPEED_MPS)
            if await self._within(conn, COMPLETED, (trip,), COMPLETION_TIMEOUT_S):
                self.completed += 1
                log.info("demo: %s is back in the yard, %s completed", vehicle, trip)
            else:
                log.warning("demo: %s is back in the yard, but %s was not completed in %g s",
                            vehicle, trip, COMPLETION_TIMEOUT_S)  # fmt: skip

    async def _within(
        self, conn: psycopg.AsyncConnection[Any], sql: str, args: Any, seconds: float
    ) -> bool:
        """Poll `sql` (one boolean) until it is true: False if it is not within `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                await self._until(conn, sql, args)
        except TimeoutError:
            return False
        return True

    async def _until(self, conn: psycopg.AsyncConnection[Any], sql: str, args: Any) -> None:
        """Poll `sql` (one boolean) until it is true."""
        while True:
            cur = await conn.execute(sql, args)
            row = await cur.fetchone()
            if row is not None and row[0]:
                return
            await asyncio.sleep(POLL_S)

    async def _stops(self, conn: psycopg.AsyncConnection[Any], trip: str) -> list[Stop]:
        cur = await conn.execute(
            "SELECT s.seq, min(o.dest_lat), min(o.dest_lon), array_agg(o.number ORDER BY o.id)"
            " FROM trip_stops s JOIN orders o ON o.trip_id = s.trip_id AND o.stop_seq = s.seq"
            " WHERE s.trip_id = %s AND o.dest_lat IS NOT NULL GROUP BY s.seq ORDER BY s.seq",
            (trip,),
        )
        return [Stop(seq, (lat, lon), numbers) for seq, lat, lon, numbers in await cur.fetchall()]

    async def _deliver(
        self, conn: psycopg.AsyncConnection[Any], number: str, gps: GpsSimulator, driver: str
    ) -> None:
        fix = gps.last_fix
        proof = DeliveryIn(lat=fix.lat, lon=fix.lon) if fix else DeliveryIn()
        try:
            async with conn.transaction():
                await deliver_order(conn, number, proof, actor=driver, driver_only=True)
        except Refused as err:
            log.warning("demo: %s could not confirm %s delivered: %s", driver, number, err)
            return
        self.delivered += 1
        log.info("demo: %s delivered by %s", number, driver)
