"""The demo's warehouse: orders received, packed and loaded through the real simulated devices.

For each wave (demo_waves.py runs one after another) it stocks the shelves, puts the two
trucks on two new trips, assigns the dispatch doors (dock A's door-1 and dock B's door-3 load
trip 1, door-4 loads trip 2) and receives six orders through the same code the API uses, each
with SSCC-labelled packages (RFID-tagged for the orders that leave through dock B) and a
customer along its truck's route, one stop each (demo_fleet.py lays out the fences, trackers
and stops, and drives the trucks). Order and trip numbers carry the run's stamp and go on
counting from wave to wave. Then the floor works the wave: every package is scanned at the
pack station, then loaded at its trip's door, by the serial scanner at door-1 or carried
through an RFID door. Once a wave, a package of trip 2 is scanned at door-1 by mistake: a
wrong load, refused at the dock and opened as an exception. Nothing here writes an order's
state: only scans move orders, through ingest, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ingest_service.orders.store import DEFAULT_FENCE_RADIUS_M, Numbering, create_order
from orders.inventory import OversellPolicy
from orders.models import CustomerIn, DestinationIn, LineIn, OrderIn
from simulators.llrp_reader import FakeLlrpReader
from simulators.scanner import ScannerSimulator
from tracklane.demo_fleet import FLEET, lay_out

log = logging.getLogger(__name__)
STEP_S = 1.2  # a dock worker's pace: one scan or one pallet through a door
SITE = "wh1"
PRODUCTS = [("SKU-CHAIR", "04012345000016", "Office chair", 89.0),
            ("SKU-DESK", "04012345000023", "Standing desk", 349.0),
            ("SKU-LAMP", "04012345000030", "Desk lamp", 29.5)]  # fmt: skip
# One customer per order, along the trucks' routes (demo_fleet.py) in the order driven: the
# first three on truck 1's way north and east of the yard, the others on truck 2's way south
# and west. Made-up names and addresses.
CUSTOMERS = [
    ("C-ACME", "Acme Offices", 52.00150, 4.40224, "Noordkade 1, Polderdorp"),
    ("C-BOLT", "Bolt Studio", 52.00242, 4.40600, "Molenweg 3, Polderdorp"),
    ("C-CATO", "Cato Legal", 52.00530, 4.40600, "Vaartstraat 50, Polderdorp"),
    ("C-DUNE", "Dune Dental", 51.99850, 4.39776, "Zuidkade 7, Polderdorp"),
    ("C-EBBE", "Ebbe Bakery", 51.99758, 4.39400, "Dijkweg 12, Polderdorp"),
    ("C-FERN", "Fern Florists", 51.99470, 4.39400, "Slotlaan 9, Polderdorp"),
]


def customer_email(ref: str) -> str:
    """A demo customer's (made-up) address: the demo's SMTP sink is its inbox."""
    return f"ops@{ref.lower()}.example"


@dataclass
class PlannedOrder:
    number: str
    trip: str
    door: str  # where it is loaded
    packages: list[tuple[str, str | None]] = field(default_factory=list)  # (SSCC, EPC)


@dataclass
class Wave:
    run: str
    number: int  # 1 for the run's first wave
    trips: dict[str, str]  # trip -> vehicle
    doors: dict[str, str]  # dispatch door -> the trip it loads
    orders: list[PlannedOrder]

    @property
    def numbers(self) -> list[str]:
        return [o.number for o in self.orders]


async def new_run(database_url: str) -> str:
    """The run's stamp for order and trip numbers (SO-<run>-<n>, T<run>-<n>): the start
    time, with a letter added in the unlikely case an earlier run in this database (its
    data folder outlives runs) already used it."""
    stamp = datetime.now(UTC).strftime("%m%d%H%M%S")
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        for suffix in ["", *"abcdefghijklmnopqrstuvwxyz"]:
            run = stamp + suffix
            cur = await conn.execute(
                "SELECT EXISTS (SELECT 1 FROM orders WHERE number LIKE %s)"
                " OR EXISTS (SELECT 1 FROM trips WHERE id LIKE %s)",
                (f"SO-{run}-%", f"T{run}-%"),
            )
            row = await cur.fetchone()
            if row is not None and not row[0]:
                return run
    raise RuntimeError(f"demo: every run stamp {stamp}[a-z] is taken")


async def receive_wave(database_url: str, numbering: Numbering, *, run: str, number: int) -> Wave:
    """Stock, trucks, trips, door assignments, and wave `number` of the run's orders."""
    first_trip = (number - 1) * len(FLEET) + 1
    trips = {f"T{run}-{first_trip + i}": truck.vehicle for i, truck in enumerate(FLEET)}
    t1, t2 = list(trips)
    doors = {"door-1": t1, "door-3": t1, "door-4": t2}
    plan = [(t1, "door-1", False), (t1, "door-1", False), (t1, "door-3", True),
            (t2, "door-4", True), (t2, "door-4", True), (t2, "door-4", True)]  # fmt: skip
    first_order = (number - 1) * len(plan) + 1
    window = datetime.now(UTC) + timedelta(hours=3)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        async with conn.transaction():
            for sku, gtin, name, price in PRODUCTS:
                await conn.execute(
                    "INSERT INTO products (sku, gtin, name, unit_price, low_stock_threshold)"
                    " VALUES (%s, %s, %s, %s, 5) ON CONFLICT (sku) DO NOTHING",
                    (sku, gtin, name, price),
                )
                await conn.execute(
                    "INSERT INTO stock VALUES (%s, %s, 40) ON CONFLICT (sku, location)"
                    " DO UPDATE SET quantity = GREATEST(stock.quantity, 40)",
                    (sku, SITE),
                )
            for vehicle in trips.values():
                await conn.execute(
                    "INSERT INTO vehicles (id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (vehicle, vehicle.replace("-", " ").title()),
                )
            for trip, vehicle in trips.items():
                await conn.execute(
                    "INSERT INTO trips (id, vehicle_id, origin_site, state)"
                    " VALUES (%s, %s, %s, 'loading')",
                    (trip, vehicle, SITE),
                )
            for door, trip in doors.items():
                await conn.execute(
                    "INSERT INTO dock_doors (site, door, trip_id, assigned_at, assigned_by)"
                    " VALUES (%s, %s, %s, now(), 'demo') ON CONFLICT (site, door) DO UPDATE"
                    " SET trip_id = EXCLUDED.trip_id, assigned_at = now(), assigned_by = 'demo'",
                    (SITE, door, trip),
                )
        orders = []
        for i, (trip, door, tagged) in enumerate(plan):
            ref, name, lat, lon, address = CUSTOMERS[i]
            order = OrderIn(
                number=f"SO-{run}-{first_order + i}",
                customer=CustomerIn(ref=ref, name=name, email=customer_email(ref)),
                lines=[LineIn(sku=PRODUCTS[i % 3][0], quantity=1 + i % 2)],
                destination=DestinationIn(address=address, lat=lat, lon=lon),
                window_start=window,
                window_end=window + timedelta(hours=2),
                packages=1 + i % 2,
                tagged=tagged,
                trip=trip,
            )
            async with conn.transaction():
                created = await create_order(
                    conn,
                    order,
                    actor="demo",
                    numbering=numbering,
                    oversell=OversellPolicy.WARN,
                    default_radius_m=DEFAULT_FENCE_RADIUS_M,
                )
                cur = await conn.execute(
                    "SELECT sscc, epc FROM packages WHERE order_id = %s ORDER BY id", (created.id,)
                )
                packages = [(str(s), e) for s, e in await cur.fetchall()]
            orders.append(PlannedOrder(order.number, trip, door, packages))
        # Where the trucks go: one stop per order, in the order of CUSTOMERS along the route.
        stops = {trip: [o.number for o in orders if o.trip == trip] for trip in trips}
        async with conn.transaction():
            await lay_out(conn, trips, stops)
    return Wave(run, number, trips, doors, orders)


class Floor:
    """The warehouse floor working a wave through the simulated devices."""

    def __init__(self, wave: Wave, devices: dict[str, Any], *, reader_doors: dict[str, int]):
        self.wave = wave
        self.pack: ScannerSimulator = devices["pack-scanner"]
        self.door_scanner: ScannerSimulator = devices["scanner-1"]
        self.reader: FakeLlrpReader = devices["dock-b-reader"]
        self.reader_doors = reader_doors  # door name -> scenario door index
        self.steps = 0
        self.wrong_loads_attempted = 0

    async def _pause(self, stop: asyncio.Event) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STEP_S)
        return stop.is_set()

    def _load(self, order: PlannedOrder, sscc: str, epc: str | None) -> None:
        if order.door in self.reader_doors and epc is not None and self.reader.scenario:
            start = self.reader.scenario_time() + 0.3
            self.reader.scenario.carry(epc, self.reader_doors[order.door], start)
        else:
            self.door_scanner.scan(f"00{sscc}", aim="]C1", symbology="gs1-128")

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(3.0)  # let the gateways connect to their devices
        mistaken = False
        for order in self.wave.orders:
            for sscc, _ in order.packages:
                self.pack.scan(f"00{sscc}", aim="]C1", symbology="gs1-128")
                self.steps += 1
                if await self._pause(stop):
                    return
            if not mistaken and order.trip != self.wave.doors["door-1"]:
                # The wrong pallet onto truck 1: door-1 loads the other trip.
                sscc, _ = order.packages[0]
                log.info("demo: loading %s of %s at door-1 by mistake", sscc, order.number)
                self.door_scanner.scan(f"00{sscc}", aim="]C1", symbology="gs1-128")
                self.wrong_loads_attempted += 1
                mistaken = True
                if await self._pause(stop):
                    return
            for sscc, epc in order.packages:
                self._load(order, sscc, epc)
                self.steps += 1
                if await self._pause(stop):
                    return
        log.info("demo: wave %d of run %s worked through (%d steps)", self.wave.number,
                 self.wave.run, self.steps)  # fmt: skip
