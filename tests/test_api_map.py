"""The live map's GeoJSON through the API, on real rows: vehicles now (status, loads, next
stop, bbox), one vehicle with its trip, trails (as stored and downsampled in SQL, with their
range checks), a trip drawn with route, trail, stops and origin, and who may read them."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import shapely.geometry
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.types.json import Jsonb

from ingest_service.geo.trails import Trail, bucket_width, bucketed_query, read_trail
from ingest_service.storage import StorageMode
from ingest_service.storage.migrate import migrate
from tests.conftest import with_database
from tests.test_api_orders import make_client

API = "/api/v1/map"
WAREHOUSE = (13.40, 52.50)  # (lon, lat)
STOP_1 = (13.45, 52.52)
# A U-shaped yard: its centroid lies in the notch, outside the fence.
U_YARD = [[13.50, 52.50], [13.53, 52.50], [13.53, 52.53], [13.52, 52.53], [13.52, 52.51],
          [13.51, 52.51], [13.51, 52.53], [13.50, 52.53], [13.50, 52.50]]  # fmt: skip
ROUTE = {"type": "LineString", "coordinates": [list(WAREHOUSE), list(STOP_1), [13.51, 52.505]]}


def circle(lon: float, lat: float, radius_m: float) -> Jsonb:
    return Jsonb({"type": "Feature", "properties": {"kind": "warehouse", "radius_m": radius_m},
                  "geometry": {"type": "Point", "coordinates": [lon, lat]}})  # fmt: skip


def fence(conn: psycopg.Connection, name: str, kind: str, feature: Jsonb) -> int:
    return conn.execute(
        "INSERT INTO geofences (name, kind, feature, created_by) VALUES (%s, %s, %s, 'test')"
        " RETURNING id",
        (name, kind, feature),
    ).fetchone()[0]


def vehicle(conn: psycopg.Connection, vid: str, fix_at: datetime | None = None, *,
            lon: float = 13.4, lat: float = 52.5, speed: float = 0.0, active: bool = True,
            tracker: str | None = None) -> None:  # fmt: skip
    """A vehicle, its last fix (none if `fix_at` is None), and a tracker on gateway gw."""
    conn.execute("INSERT INTO vehicles VALUES (%s, %s, %s, %s)", (vid, vid.title(), None, active))
    if fix_at is not None:
        conn.execute(
            "INSERT INTO vehicle_state (vehicle_id, last_fix_at, lat, lon, speed_mps, heading_deg)"
            " VALUES (%s, %s, %s, %s, %s, 90)",
            (vid, fix_at, lat, lon, speed),
        )
    if tracker:
        conn.execute(
            "INSERT INTO trackers (site, gateway, device, vehicle_id, assigned_by)"
            " VALUES ('wh1', 'gw', %s, %s, 'test')",
            (tracker, vid),
        )


def fixes(conn: psycopg.Connection, device: str, points: list[tuple[datetime, float, float]],
          *, site: str = "wh1") -> None:  # fmt: skip
    """Stored positions of tracker (site, gw, device): (time, lon, lat) each."""
    with conn.cursor().copy(
        "COPY positions (time, event_id, site, gateway, device, seq, lat, lon, fix_quality,"
        " received_at) FROM STDIN"
    ) as copy:
        for n, (t, lon, lat) in enumerate(points):
            copy.write_row((t, uuid.uuid4(), site, "gw", device, n, lat, lon, 1, t))


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def scene(database_url: str, now: datetime, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """truck-1 (moving, tracker gps-1) on trip T5, departed 20 min ago from a circular
    warehouse fence: stop 1 (a circle, arrived) delivered SO-1; stop 2 (a U-shaped yard)
    delivers SO-2 (in transit), SO-3 (loaded) and SO-4 (only packed). van-2 stands still
    with no trip, old-3 was last heard 30 min ago, off-4 is out of service, new-5 has no
    fix; polar-6 is parked east of the antimeridian. Settings from indirect parameters."""
    with psycopg.connect(database_url) as conn:
        vehicle(
            conn,
            "truck-1",
            now - timedelta(seconds=5),
            lon=13.46,
            lat=52.515,
            speed=12.5,
            tracker="gps-1",
        )
        vehicle(conn, "van-2", now - timedelta(seconds=5), lon=13.30, lat=52.40, speed=0.4)
        vehicle(conn, "old-3", now - timedelta(minutes=30), lon=13.41, lat=52.51, speed=12.0)
        vehicle(conn, "off-4", now, active=False)
        vehicle(conn, "new-5")
        vehicle(conn, "polar-6", now, lon=179.5, lat=1.0)
        wh = fence(conn, "Warehouse", "warehouse", circle(*WAREHOUSE, 150))
        s1 = fence(conn, "Acme", "customer_site", circle(*STOP_1, 120))
        u = Jsonb({"type": "Feature", "properties": {"kind": "customer_site"},
                   "geometry": {"type": "Polygon", "coordinates": [U_YARD]}})  # fmt: skip
        s2 = fence(conn, "U yard", "customer_site", u)
        conn.execute(
            "INSERT INTO trips (id, vehicle_id, origin_site, state, driver, route,"
            " origin_fence_id, created_at, departed_at)"
            " VALUES ('T5', 'truck-1', 'wh1', 'departed', 'dana', %s, %s, %s, %s)",
            (Jsonb(ROUTE), wh, now - timedelta(hours=1), now - timedelta(minutes=20)),
        )
        conn.execute(
            "INSERT INTO trip_stops (trip_id, seq, fence_id, state, eta, eta_earliest,"
            " eta_latest, arrived_at) VALUES ('T5', 1, %s, 'arrived', NULL, NULL, NULL, %s),"
            " ('T5', 2, %s, 'pending', %s, %s, %s, NULL)",
            (s1, now - timedelta(minutes=8), s2, now + timedelta(minutes=9),
             now + timedelta(minutes=7), now + timedelta(minutes=12)),
        )  # fmt: skip
        customer = conn.execute(
            "INSERT INTO customers (ref, name) VALUES ('C-1', 'Acme') RETURNING id"
        ).fetchone()[0]
        for number, state, stop in (("SO-1", "arrived", 1), ("SO-2", "in_transit", 2),
                                    ("SO-3", "loaded", 2), ("SO-4", "packed", 2)):  # fmt: skip
            conn.execute(
                "INSERT INTO orders (number, customer_id, state, dest_address, trip_id, stop_seq,"
                " created_by) VALUES (%s, %s, %s, 'x', 'T5', %s, 'test')",
                (number, customer, state, stop),
            )
        # Before departure (not in the trip's trail) and after it, one fix a minute.
        fixes(conn, "gps-1", [(now - timedelta(minutes=m), 13.40 + m / 1000, 52.50)
                              for m in range(30, 0, -1)])  # fmt: skip
    c = make_client(database_url, **getattr(request, "param", {}))
    yield c
    c.__exit__(None, None, None)


def by_id(collection: dict) -> dict[str, dict]:
    assert collection["type"] == "FeatureCollection"
    return {f["id"]: f for f in collection["features"]}


def test_vehicles_are_points_with_status_trip_loads_and_next_stop(
    now: datetime, scene: TestClient
) -> None:
    r = scene.get(f"{API}/vehicles")
    assert r.status_code == 200, r.text
    found = by_id(r.json())
    assert sorted(found) == ["old-3", "polar-6", "truck-1", "van-2"]  # active, with a fix
    truck = found["truck-1"]
    assert truck["geometry"] == {"type": "Point", "coordinates": [13.46, 52.515]}  # [lon, lat]
    props = truck["properties"]
    assert (props["status"], props["speed_mps"], props["heading_deg"]) == ("moving", 12.5, 90)
    assert (props["trip_id"], props["trip_state"], props["loads"]) == ("T5", "departed", 3)
    assert props["next_stop"]["seq"] == 2
    assert props["next_stop"]["orders"] == ["SO-2", "SO-3", "SO-4"]
    assert datetime.fromisoformat(props["next_stop"]["eta"]) == now + timedelta(minutes=9)
    assert datetime.fromisoformat(props["last_fix_at"]) == now - timedelta(seconds=5)
    van = found["van-2"]["properties"]
    assert (van["status"], van["trip_id"], van["loads"], van["next_stop"]) == (
        "stopped", None, 0, None)  # fmt: skip
    assert found["old-3"]["properties"]["status"] == "stale"


@pytest.mark.parametrize("scene", [{"stale_tracker_min": 45}], indirect=True)
def test_stale_follows_the_setting(scene: TestClient) -> None:
    found = by_id(scene.get(f"{API}/vehicles").json())
    assert found["old-3"]["properties"]["status"] == "moving"  # 30 min silent is not 45


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ("13.35,52.45,13.5,52.6", ["old-3", "truck-1"]),
        ("13.2,52.3,13.35,52.45", ["van-2"]),
        ("179,-5,-179,5", ["polar-6"]),  # west > east: across the antimeridian
        ("0,0,1,1", []),
    ],
)
def test_the_bbox_keeps_vehicles_inside_it(scene: TestClient, bbox: str, expected: list) -> None:
    r = scene.get(f"{API}/vehicles", params={"bbox": bbox})
    assert r.status_code == 200, r.text
    assert sorted(by_id(r.json())) == expected


@pytest.mark.parametrize("bbox", ["13,52,14", "a,b,c,d", "13,53,14,52", "13,52,200,53"])
def test_a_bad_bbox_is_refused_with_its_form(scene: TestClient, bbox: str) -> None:
    r = scene.get(f"{API}/vehicles", params={"bbox": bbox})
    assert r.status_code == 422 and "west,south,east,north" in r.json()["detail"]


def test_a_vehicle_with_its_trip_orders_and_stops(now: datetime, scene: TestClient) -> None:
    r = scene.get(f"{API}/vehicles/truck-1")
    assert r.status_code == 200, r.text
    v = r.json()
    assert (v["id"], v["name"], v["active"]) == ("truck-1", "Truck-1", True)
    assert (v["last_fix"]["lon"], v["last_fix"]["lat"], v["last_fix"]["status"]) == (
        13.46, 52.515, "moving")  # fmt: skip
    trip = v["trip"]
    assert (trip["id"], trip["state"], trip["driver"]) == ("T5", "departed", "dana")
    assert datetime.fromisoformat(trip["departed_at"]) == now - timedelta(minutes=20)
    assert [(o["number"], o["state"], o["stop_seq"], o["customer"]) for o in trip["orders"]] == [
        ("SO-1", "arrived", 1, "Acme"),
        ("SO-2", "in_transit", 2, "Acme"),
        ("SO-3", "loaded", 2, "Acme"),
        ("SO-4", "packed", 2, "Acme"),
    ]
    stops = [(s["seq"], s["state"], s["eta"] is not None, s["arrived_at"] is not None)
             for s in trip["stops"]]  # fmt: skip
    assert stops == [(1, "arrived", False, True), (2, "pending", True, False)]
    idle = scene.get(f"{API}/vehicles/new-5").json()
    assert (idle["last_fix"], idle["trip"]) == (None, None)
    missing = scene.get(f"{API}/vehicles/nope")
    assert missing.status_code == 404 and "GET /api/v1/vehicles" in missing.json()["detail"]


def test_a_short_trail_comes_back_as_stored(
    now: datetime, scene: TestClient, database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        # A second tracker on the truck counts; a tracker on no vehicle does not.
        conn.execute("INSERT INTO trackers VALUES ('wh1', 'gw', 'gps-2', 'truck-1', now(), 't')")
        fixes(conn, "gps-2", [(now - timedelta(seconds=90), 13.5, 52.6), (now, 13.6, 52.7)])
        fixes(conn, "gps-9", [(now - timedelta(seconds=100), 1.0, 1.0)])
    window = {"from": (now - timedelta(minutes=3)).isoformat(), "to": now.isoformat()}
    r = scene.get(f"{API}/vehicles/truck-1/trail", params=window)
    assert r.status_code == 200, r.text
    trail = r.json()
    assert (trail["type"], trail["geometry"]["type"]) == ("Feature", "LineString")
    props = trail["properties"]
    # [from, to): the fix 3 minutes ago is in, the one at `to` is not.
    assert (props["points"], props["bucket_s"]) == (4, None)
    expected = [[13.403, 52.5], [13.402, 52.5], [13.5, 52.6], [13.401, 52.5]]
    assert trail["geometry"]["coordinates"] == [pytest.approx(p) for p in expected]
    times = [datetime.fromisoformat(t) for t in props["times"]]
    assert times == [now - timedelta(seconds=s) for s in (180, 120, 90, 60)]
    one = {"from": (now - timedelta(seconds=70)).isoformat(), "to": now.isoformat()}
    single = scene.get(f"{API}/vehicles/truck-1/trail", params=one).json()
    assert single["geometry"]["type"] == "Point"
    assert single["geometry"]["coordinates"] == pytest.approx([13.401, 52.5])
    empty = scene.get(f"{API}/vehicles/van-2/trail").json()  # the last hour, no tracker
    assert (empty["geometry"], empty["properties"]["points"], empty["properties"]["times"]) == (
        None, 0, [])  # fmt: skip


def test_a_long_trail_is_averaged_in_equal_time_buckets(
    now: datetime, scene: TestClient, database_url: str
) -> None:
    """5,000 fixes 1.44 s apart over two hours, max 100 points: 100 buckets of 72 s."""
    start = now - timedelta(days=2)
    pts = [(start + timedelta(microseconds=i * 1_440_000), 13.0 + (i % 7) / 1000, 52.0 + i / 1e5)
           for i in range(5000)]  # fmt: skip
    with psycopg.connect(database_url) as conn:
        fixes(conn, "gps-1", pts)
    window = {"from": start.isoformat(), "to": (start + timedelta(hours=2)).isoformat()}
    r = scene.get(f"{API}/vehicles/truck-1/trail", params={**window, "max_points": 100})
    assert r.status_code == 200, r.text
    props, coords = r.json()["properties"], r.json()["geometry"]["coordinates"]
    assert props["bucket_s"] == 72 and props["points"] == len(coords) == len(props["times"]) == 100
    times = [datetime.fromisoformat(t) for t in props["times"]]
    assert times == sorted(times) and times[0] == start  # buckets start at `from`
    # Bucket 37 holds fixes 1850..1899 (72 s / 1.44 s = 50 a bucket), by hand:
    lats = [52.0 + i / 1e5 for i in range(1850, 1900)]
    lons = [13.0 + (i % 7) / 1000 for i in range(1850, 1900)]
    assert times[37] == start + timedelta(seconds=37 * 72)
    assert coords[37] == pytest.approx([sum(lons) / 50, sum(lats) / 50], abs=1e-9)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"from": "2026-01-02T10:00:00Z", "to": "2026-01-02T09:00:00Z"}, "must be after"),
        ({"from": "2025-12-01T00:00:00Z", "to": "2026-01-02T00:00:00+01:00"}, "at most 31"),
        ({"max_points": 1}, "greater than or equal to 2"),
        ({"max_points": 10_001}, "less than or equal to 10000"),
        ({"from": "2026-01-01T10:00:00"}, "timezone"),
    ],
)
def test_trail_ranges_are_checked(scene: TestClient, params: dict, reason: str) -> None:
    r = scene.get(f"{API}/vehicles/truck-1/trail", params=params)
    assert r.status_code == 422 and reason in r.json()["detail"], r.text


def test_a_trail_of_no_vehicle_is_a_404(scene: TestClient) -> None:
    r = scene.get(f"{API}/vehicles/nope/trail")
    assert r.status_code == 404 and "GET /api/v1/vehicles" in r.json()["detail"]


def test_a_trip_is_drawn_with_route_trail_stops_and_origin(
    now: datetime, scene: TestClient
) -> None:
    r = scene.get(f"{API}/trips/T5")
    assert r.status_code == 200, r.text
    features = r.json()["features"]
    assert [f["properties"]["kind"] for f in features] == [
        "route", "trail", "stop", "stop", "origin"]  # fmt: skip
    found = by_id(r.json())
    assert found["route"]["geometry"] == ROUTE
    trail = found["trail"]
    assert trail["properties"]["points"] == 20  # one a minute since departure, not before
    assert trail["geometry"]["coordinates"][0] == [13.42, 52.5]
    one, two = found["stop-1"], found["stop-2"]
    assert one["geometry"] == {"type": "Point", "coordinates": list(STOP_1)}  # circle centre
    assert (one["properties"]["state"], one["properties"]["orders"]) == ("arrived", ["SO-1"])
    assert two["properties"]["orders"] == ["SO-2", "SO-3", "SO-4"]
    assert datetime.fromisoformat(two["properties"]["eta_latest"]) == now + timedelta(minutes=12)
    yard = shapely.geometry.Polygon(U_YARD)
    assert not yard.contains(yard.centroid)  # so the pin goes elsewhere, inside the yard
    assert yard.contains(shapely.geometry.shape(two["geometry"]))
    origin = found["origin"]  # a circle stays a Point with its radius
    assert origin["geometry"] == {"type": "Point", "coordinates": list(WAREHOUSE)}
    assert (origin["properties"]["radius_m"], origin["properties"]["fence_kind"]) == (
        150, "warehouse")  # fmt: skip
    missing = scene.get(f"{API}/trips/T404")
    assert missing.status_code == 404 and "GET /api/v1/trips" in missing.json()["detail"]


def test_dispatchers_and_viewers_read_the_map_dock_and_drivers_do_not(scene: TestClient) -> None:
    urls = [f"{API}/vehicles", f"{API}/vehicles/truck-1", f"{API}/vehicles/truck-1/trail",
            f"{API}/trips/T5"]  # fmt: skip
    for role, expected in (("dispatcher", 200), ("viewer", 200), ("dock", 403), ("driver", 403)):
        user = {"username": f"u-{role}", "password": f"{role}-password-long", "role": role}
        assert scene.post("/api/v1/users", json=user).status_code == 201
        login = scene.post(
            "/api/v1/auth/login", json={k: user[k] for k in ("username", "password")}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for url in urls:
            assert scene.get(url, headers=headers).status_code == expected, (role, url)


def test_bucket_width_never_makes_more_buckets_than_asked() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for span_s, points in ((7200, 100), (7201, 100), (1, 2000), (31 * 86400, 2), (0.5, 10)):
        width = bucket_width(start, start + timedelta(seconds=span_s), points)
        assert width >= timedelta(seconds=1) and span_s / width.total_seconds() <= points


def test_timescale_downsamples_with_time_bucket_and_plain_postgresql_with_date_bin() -> None:
    timescale = bucketed_query(StorageMode("timescaledb", "16.4", "2.17.0")).as_string()
    plain = bucketed_query(StorageMode("postgresql", "16.4")).as_string()
    assert "time_bucket(" in timescale and "date_bin" not in timescale
    assert "date_bin(" in plain and "time_bucket" not in plain


@pytest.fixture
def timescale_url() -> Iterator[str]:
    """A throwaway database on the TimescaleDB server tests/test_timescale.py uses."""
    server = os.environ.get("TRACKLANE_TEST_TIMESCALE_URL")
    if not server:
        pytest.skip("set TRACKLANE_TEST_TIMESCALE_URL to a PostgreSQL with timescaledb")
    name = f"ts_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_time_bucket_and_date_bin_agree_on_a_hypertable(timescale_url: str, now: datetime) -> None:
    mode = migrate(timescale_url, retention_days=30, compress_after_days=3)
    assert mode.timescale
    start = now - timedelta(days=1)
    with psycopg.connect(timescale_url) as conn:
        vehicle(conn, "truck-1", tracker="gps-1")
        fixes(conn, "gps-1", [(start + timedelta(seconds=i), 13 + i / 1e4, 52.0)
                              for i in range(3000)])  # fmt: skip

    async def both() -> list[Trail]:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            end = start + timedelta(hours=1)
            return [await read_trail(conn, m, "truck-1", start, end, 50)
                    for m in (mode, StorageMode("postgresql", "16"))]  # fmt: skip

    bucketed, binned = asyncio.run(both())
    assert bucketed.bucket_s == 72 and len(bucketed.times) == 42  # 3,000 s in 72 s buckets
    assert bucketed == binned
