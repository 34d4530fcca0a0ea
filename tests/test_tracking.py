"""Positions move orders end to end: tracker fixes → broker → ingest → fences, ETAs, orders.

A real broker and database. A truck's tracker publishes its fixes as a gateway does, along a
simulated trip: parked in the warehouse, out of its fence, on to stop 1, a dwell there, on to
stop 2. The orders it carries must go in transit when it leaves, arriving as it nears their
stop and arrived when it dwells there: in that order, at the fixes' times, never backwards.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg.types.json import Jsonb

from event_contract import PositionEvent, encode, event_topic, new_event_id
from geofence.eta import haversine_m
from ingest_service.pipeline.consumer import ConsumerConfig, IngestConsumer
from ingest_service.pipeline.stats import IngestStats
from ingest_service.tracking import open_stale_trackers
from mqtt_client import BrokerAddress
from simulators import synthetic
from tests.mqtt_helpers import publish_all, wait_until

SITE = "wh1"
DEVICE = "gps-1"
RADIUS_M = 150.0
WAREHOUSE = (50.8500, 4.3500)  # (lat, lon)
STOP_1 = (50.8500, 4.4212)  # about 5 km east
STOP_2 = (50.8860, 4.4212)  # about 4 km north of stop 1
M_PER_DEG_LAT = 111_195.0


@dataclass(frozen=True)
class Fix:
    time: datetime
    lat: float
    lon: float
    speed: float


def drive(start: datetime, legs: list[tuple[str, tuple[float, float], float]]) -> list[Fix]:
    """Fixes every 10 s: ("dwell", place, seconds) or ("drive", to, m/s), with ~2 m noise."""
    rng = random.Random(7)
    fixes: list[Fix] = []
    t, here = start, legs[0][1]

    def add(lat: float, lon: float, speed: float) -> None:
        nonlocal t
        dlat = rng.gauss(0, 2) / M_PER_DEG_LAT
        dlon = rng.gauss(0, 2) / (M_PER_DEG_LAT * math.cos(math.radians(lat)))
        fixes.append(Fix(t, lat + dlat, lon + dlon, max(0.0, speed + rng.gauss(0, 0.3))))
        t += timedelta(seconds=10)

    for kind, place, value in legs:
        if kind == "dwell":
            here = place
            for _ in range(int(value // 10)):
                add(*here, 0.0)
        else:
            steps = math.ceil(haversine_m(here, place) / (value * 10))
            for k in range(1, steps + 1):
                add(here[0] + (place[0] - here[0]) * k / steps,
                    here[1] + (place[1] - here[1]) * k / steps, value)  # fmt: skip
            here = place
    return fixes


TRIP = [
    ("dwell", WAREHOUSE, 300),
    ("drive", STOP_1, 15.0),
    ("dwell", STOP_1, 300),
    ("drive", STOP_2, 15.0),
    ("dwell", STOP_2, 180),
]


def first_time(fixes: list[Fix], centre: tuple[float, float], *, inside: bool, after: datetime
               ) -> datetime:  # fmt: skip
    """When the hysteresis machine puts the first fix on that side: 20 m inside the fence
    (15 m margin + 5 m for HDOP 1), or 35 m outside it (30 + 5)."""
    for f in fixes:
        edge = haversine_m(centre, (f.lat, f.lon)) - RADIUS_M
        if f.time > after and (edge <= -20 if inside else edge >= 35):
            return f.time
    raise AssertionError("the path never gets there")


def circle(lat: float, lon: float) -> Jsonb:
    return Jsonb({"type": "Feature", "properties": {"radius_m": RADIUS_M},
                  "geometry": {"type": "Point", "coordinates": [lon, lat]}})  # fmt: skip


@pytest.fixture
def trip(database_url: str) -> Iterator[tuple[str, str, datetime]]:
    """truck-1 (tracker gps-1 on a fresh gateway) loading trip T1 at door-1 of wh1: stop 1
    delivers SO-1, stop 2 SO-2 (whose window ends too soon); SO-3 is only partly loaded."""
    gateway = f"truck-{uuid.uuid4().hex[:6]}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO customers (ref, name) VALUES ('C-1', 'Acme')")
        conn.execute("INSERT INTO vehicles (id, name) VALUES ('truck-1', 'Truck 1')")
        conn.execute(
            "INSERT INTO trackers (site, gateway, device, vehicle_id, assigned_by)"
            " VALUES (%s, %s, %s, 'truck-1', 'test')",
            (SITE, gateway, DEVICE),
        )
        fences = []
        for name, kind, place in (("wh1", "warehouse", WAREHOUSE), ("Stop 1", "customer_site",
                                  STOP_1), ("Stop 2", "customer_site", STOP_2)):  # fmt: skip
            (fid,) = conn.execute(
                "INSERT INTO geofences (name, kind, feature, created_by) VALUES (%s, %s, %s,"
                " 'test') RETURNING id",
                (name, kind, circle(*place)),
            ).fetchone()
            fences.append(fid)
        conn.execute(
            "INSERT INTO trips (id, vehicle_id, origin_site, state, origin_fence_id)"
            " VALUES ('T1', 'truck-1', 'wh1', 'loading', %s)",
            (fences[0],),
        )
        conn.execute("INSERT INTO trip_stops (trip_id, seq, fence_id) VALUES ('T1', 1, %s),"
                     " ('T1', 2, %s)", (fences[1], fences[2]))  # fmt: skip
        conn.execute("INSERT INTO dock_doors (site, door, trip_id) VALUES ('wh1', 'door-1', 'T1')")
        for n, (number, stop, window_end, loaded) in enumerate(
            (
                ("SO-1", 1, start + timedelta(hours=2), True),
                ("SO-2", 2, start + timedelta(minutes=10), True),
                ("SO-3", 2, None, False),
            )
        ):
            (order_id,) = conn.execute(
                "INSERT INTO orders (number, customer_id, state, dest_address, trip_id, stop_seq,"
                " window_end, created_by) VALUES (%s, 1, %s, 'x', 'T1', %s, %s, 'test')"
                " RETURNING id",
                (number, "loaded" if loaded else "packed", stop, window_end),
            ).fetchone()
            conn.execute(
                "INSERT INTO packages (order_id, sscc, state, loaded_trip) VALUES"
                " (%s, %s, 'loaded', 'T1'), (%s, %s, %s, %s)",
                (order_id, f"{n:018d}", order_id, f"{n + 10:018d}",
                 "loaded" if loaded else "packed", "T1" if loaded else None),
            )  # fmt: skip
    yield database_url, gateway, start


def consumer(broker: BrokerAddress, url: str, group: str, n: int = 0) -> IngestConsumer:
    c = IngestConsumer(
        broker=broker,
        database_url=url,
        # One message per transaction (batch_events=1): what a vehicle knows must carry over.
        config=ConsumerConfig(
            client_id=f"{group}-{n}",
            share_group=group,
            arriving_eta_min=3,
            approach_radius_m=400,
            batch_events=1,
        ),
        stats=IngestStats(CollectorRegistry()),
    )
    c.start()
    wait_until(lambda: c.stats.connected, what="ingest to connect")
    return c


def positions(fixes: list[Fix]) -> list[PositionEvent]:
    return [
        PositionEvent(event_id=new_event_id(), device=DEVICE, seq=i, device_time=f.time,
                      received_at=f.time, lat=f.lat, lon=f.lon, speed_mps=f.speed, hdop=1.0,
                      satellites=9)
        for i, f in enumerate(fixes)
    ]  # fmt: skip


def send(broker: BrokerAddress, gateway: str, events: list[PositionEvent], size: int) -> None:
    batches = synthetic.batches(events, site=SITE, gateway=gateway, size=size)
    publish_all(broker, [(event_topic(SITE, gateway, "positions"), encode(b)) for b in batches])


def rows(url: str, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def moves(url: str, number: str) -> list[tuple]:
    return rows(
        url,
        "SELECT from_state, to_state, trigger, at, evidence_event_id IS NOT NULL, actor"
        " FROM order_events e JOIN orders o ON o.id = e.order_id"
        " WHERE o.number = %s AND e.kind = 'state' ORDER BY e.id",
        number,
    )


def arrived(url: str, number: str) -> bool:
    return rows(url, "SELECT state FROM orders WHERE number = %s", number) == [("arrived",)]


def test_a_trip_moves_its_orders_in_transit_arriving_and_arrived(mqtt_broker, trip) -> None:
    url, gateway, start = trip
    fixes = drive(start, TRIP)
    ingest = consumer(mqtt_broker, url, f"g{uuid.uuid4().hex[:8]}")
    try:
        send(mqtt_broker, gateway, positions(fixes), size=10)
        wait_until(lambda: arrived(url, "SO-2"), timeout=30, what="SO-2 to arrive")
    finally:
        ingest.stop()
    left = first_time(fixes, WAREHOUSE, inside=False, after=start)
    at_1 = first_time(fixes, STOP_1, inside=True, after=left)
    at_2 = first_time(fixes, STOP_2, inside=True, after=at_1)
    actor = f"tracker:{SITE}/{gateway}/{DEVICE}"
    for number, reached in (("SO-1", at_1), ("SO-2", at_2)):
        history = moves(url, number)
        assert [(f, t, trig) for f, t, trig, *_ in history] == [
            ("loaded", "in_transit", "departed"),
            ("in_transit", "arriving", "approaching"),
            ("arriving", "arrived", "arrived"),
        ], number
        times = [h[3] for h in history]
        assert times[0] == left and times[2] == reached, number
        assert times[0] < times[1] < times[2], number
        assert all(h[4] and h[5] == actor for h in history)
    # Stop 2 is approached only once stop 1 is behind.
    assert moves(url, "SO-2")[1][3] > at_1
    # Not all of SO-3 is on board: it stays where it was.
    assert rows(url, "SELECT state FROM orders WHERE number = 'SO-3'") == [("packed",)]
    assert moves(url, "SO-3") == []
    short = rows(url, "SELECT p.sscc, e.trip_id FROM exceptions e JOIN packages p"
                      " ON p.id = e.package_id WHERE e.kind = 'short_load'")  # fmt: skip
    assert short == [(f"{12:018d}", "T1")]  # SO-3's package left on the dock
    assert rows(url, "SELECT state, departed_at FROM trips") == [("departed", left)]
    assert rows(url, "SELECT trip_id FROM dock_doors") == [(None,)]
    stops = rows(
        url,
        "SELECT seq, state, arrived_at, eta IS NOT NULL, eta_at IS NOT NULL,"
        " eta_earliest <= eta AND eta <= eta_latest FROM trip_stops ORDER BY seq",
    )
    assert stops == [(1, "arrived", at_1, True, True, True), (2, "arrived", at_2, True, True, True)]
    # SO-2's window closed long before the truck could get there: one delay, for it alone.
    delays = rows(url, "SELECT o.number, e.status FROM exceptions e JOIN orders o"
                       " ON o.id = e.order_id WHERE e.kind = 'delay'")  # fmt: skip
    assert delays == [("SO-2", "open")]
    assert rows(url, "SELECT last_fix_at FROM vehicle_state") == [(fixes[-1].time,)]
    kinds = rows(url, "SELECT g.name, t.kind, t.initial FROM fence_transitions t"
                      " JOIN geofences g ON g.id = t.fence_id ORDER BY t.at, t.id")  # fmt: skip
    assert kinds == [("wh1", "entered", True), ("wh1", "exited", False),
                     ("Stop 1", "entered", False), ("Stop 1", "exited", False),
                     ("Stop 2", "entered", False)]  # fmt: skip


def test_two_workers_with_one_vehicles_fixes_interleaved_confirm_each_move_once(
    mqtt_broker, trip
) -> None:
    """Fixes of one truck in two-fix messages, spread by the broker over two workers sharing
    the subscription: they serialize on the vehicle's row, and late fixes are weighed as
    late. Every fence transition and every order move happens exactly once."""
    url, gateway, start = trip
    fixes = drive(start, TRIP)
    group = f"g{uuid.uuid4().hex[:8]}"
    workers = [consumer(mqtt_broker, url, group, n) for n in range(2)]
    try:
        events = positions(fixes)
        send(mqtt_broker, gateway, events, size=2)
        wait_until(lambda: arrived(url, "SO-2"), timeout=60, what="SO-2 to arrive")
        wait_until(
            lambda: rows(url, "SELECT count(*) FROM positions") == [(len(fixes),)],
            what="every fix stored",
        )
        # The same arrival events again, as a broker redelivers them, over both workers.
        send(mqtt_broker, gateway, events, size=2)
        wait_until(
            lambda: sum(w.stats.snapshot()["duplicates"] for w in workers) >= len(fixes),
            what="the redelivered fixes seen as duplicates",
        )
    finally:
        for w in workers:
            w.stop()
    assert all(w.stats.stored["positions"] > 0 for w in workers), "both workers took a share"
    # Each customer hears of each move once: one outbox row per order and event.
    assert rows(
        url,
        "SELECT o.number, n.event, count(*) FROM notifications n JOIN orders o"
        " ON o.id = n.order_id WHERE n.event IN ('dispatched', 'arriving', 'arrived')"
        " GROUP BY 1, 2 ORDER BY 1, 2",
    ) == [(n, e, 1) for n in ("SO-1", "SO-2") for e in ("arrived", "arriving", "dispatched")]
    counts = rows(
        url,
        "SELECT g.name, t.kind, count(*) FROM fence_transitions t"
        " JOIN geofences g ON g.id = t.fence_id GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert counts == [
        ("Stop 1", "entered", 1),
        ("Stop 1", "exited", 1),
        ("Stop 2", "entered", 1),
        ("wh1", "entered", 1),
        ("wh1", "exited", 1),
    ]
    for number in ("SO-1", "SO-2"):
        assert [(f, t) for f, t, *_ in moves(url, number)] == [
            ("loaded", "in_transit"), ("in_transit", "arriving"), ("arriving", "arrived")
        ]  # fmt: skip
    assert not any(w.stats.tracking.get("tracking_failures") for w in workers)


def test_a_late_fix_from_the_warehouse_moves_nothing_back(mqtt_broker, trip) -> None:
    """After the truck reached stop 1, a fix buffered on the way (from inside the warehouse,
    before it left) arrives: no transition is retracted and no order moves back."""
    url, gateway, start = trip
    fixes = drive(start, TRIP[:3])
    ingest = consumer(mqtt_broker, url, f"g{uuid.uuid4().hex[:8]}")
    try:
        send(mqtt_broker, gateway, positions(fixes), size=10)
        wait_until(lambda: arrived(url, "SO-1"), timeout=30, what="SO-1 to arrive")
        before = rows(url, "SELECT count(*) FROM fence_transitions")
        late = Fix(fixes[25].time + timedelta(seconds=5), *WAREHOUSE, 0.0)
        send(mqtt_broker, gateway, positions([late]), size=1)
        wait_until(lambda: ingest.stats.snapshot()["events_stored"] == len(fixes) + 1,
                   what="the late fix stored")  # fmt: skip
    finally:
        ingest.stop()
    assert rows(url, "SELECT count(*) FROM fence_transitions") == before
    assert ingest.stats.tracking["fixes_rejected"] >= 1
    assert [(f, t) for f, t, *_ in moves(url, "SO-1")] == [
        ("loaded", "in_transit"), ("in_transit", "arriving"), ("arriving", "arrived")
    ]  # fmt: skip
    assert rows(url, "SELECT state FROM trips") == [("departed",)]


def test_a_departed_truck_silent_too_long_opens_one_stale_tracker_exception(trip) -> None:
    url, _gateway, start = trip
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE trips SET state = 'departed', departed_at = %s", (start,))
        conn.execute("INSERT INTO vehicle_state (vehicle_id, last_fix_at) VALUES ('truck-1', %s)",
                     (start + timedelta(minutes=5),))  # fmt: skip
        now = start + timedelta(minutes=12)
        assert open_stale_trackers(conn, now, 10) == 0  # silent 7 minutes: not yet
        now = start + timedelta(minutes=16)
        assert open_stale_trackers(conn, now, 10) == 1
        assert open_stale_trackers(conn, now + timedelta(minutes=5), 10) == 0  # same silence
        conn.execute("UPDATE vehicle_state SET last_fix_at = %s", (now,))  # heard, then silent
        assert open_stale_trackers(conn, now + timedelta(minutes=11), 10) == 1
    opened = rows(url, "SELECT vehicle_id, trip_id, status FROM exceptions"
                       " WHERE kind = 'stale_tracker'")  # fmt: skip
    assert opened == [("truck-1", "T1", "open")] * 2


def test_a_failure_in_tracking_costs_its_savepoint_never_the_positions(
    mqtt_broker, trip, monkeypatch
) -> None:
    url, gateway, start = trip

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug in the tracking logic")

    monkeypatch.setattr("ingest_service.tracking.tracker.follow", broken)
    fixes = drive(start, TRIP[:2])
    ingest = consumer(mqtt_broker, url, f"g{uuid.uuid4().hex[:8]}")
    try:
        send(mqtt_broker, gateway, positions(fixes), size=10)
        wait_until(lambda: rows(url, "SELECT count(*) FROM positions") == [(len(fixes),)],
                   what="every fix stored")  # fmt: skip
        wait_until(lambda: ingest.health()["pending_messages"] == 0, what="every message acked")
    finally:
        ingest.stop()
    assert ingest.stats.tracking["tracking_failures"] == math.ceil(len(fixes) / 10)
    assert rows(url, "SELECT count(*) FROM vehicle_state") == [(0,)]  # rolled back with it
    assert rows(url, "SELECT state FROM orders WHERE number = 'SO-1'") == [("loaded",)]
