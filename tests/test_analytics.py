"""Analytics through the API against a hand-made history whose figures are worked out below.

The range is 2026-03-02T00:00Z to 2026-03-04T00:00Z. Times are UTC; "10:30" is 2026-03-02.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from tests.test_api_exceptions import login
from tests.test_api_orders import make_client

API = "/api/v1/analytics"
RANGE = {"from": "2026-03-02T00:00:00Z", "to": "2026-03-04T00:00:00Z"}
DAY = datetime(2026, 3, 2, tzinfo=UTC)


def at(clock: str, day: int = 0) -> datetime:
    """'10:30' on 2026-03-02, or `day` days later (negative: earlier)."""
    h, m = map(int, clock.split(":"))
    return DAY + timedelta(days=day, hours=h, minutes=m)


# Order histories: (number, site, window_end, [(time, state)], loading (site, door, time)).
# Minutes per stage, worked out by hand:
#   SO-1: created 10, picking 30 (picking 08:10, picked 08:20, packed 08:40), packed 20,
#         loaded 30, in_transit 90, total 180; delivered 11:00 <= window 12:00: on time.
#   SO-2: created 20, picking 40, packed 30, loaded 30, in_transit 180, total 300; its proof
#         of delivery says 13:00 > window 12:00: late.
#   SO-3: created 30, picking skipped (straight to packed), packed 30, loaded 10, in_transit
#         1440 and total 1510 ending on 03-03; no window: counted apart.
#   SO-4: created 03-01 23:00, picking 00:30 (created: 90, ends in range), then cancelled:
#         its picking stage is never measured.
ORDERS = [
    ("SO-1", "wh1", at("12:00"),
     [(at("08:00"), "created"), (at("08:10"), "picking"), (at("08:20"), "picked"),
      (at("08:40"), "packed"), (at("09:00"), "loaded"), (at("09:30"), "in_transit"),
      (at("11:00"), "delivered")], ("wh1", "door-1", at("09:00"))),
    ("SO-2", "wh1", at("12:00"),
     [(at("08:00"), "created"), (at("08:20"), "picking"), (at("09:00"), "packed"),
      (at("09:30"), "loaded"), (at("10:00"), "in_transit"), (at("13:00"), "delivered")],
     ("wh1", "door-2", at("09:30"))),
    ("SO-3", "wh2", None,
     [(at("09:00"), "created"), (at("09:30"), "packed"), (at("10:00"), "loaded"),
      (at("10:10"), "in_transit"), (at("10:10", 1), "delivered")], ("wh2", "door-1", at("10:00"))),
    ("SO-4", "wh1", None,
     [(at("23:00", -1), "created"), (at("00:30"), "picking"), (at("01:00"), "cancelled")], None),
]  # fmt: skip
# One metre-exact yardstick: on a meridian the haversine is R * dlat, R = 6,371,008.8 m, so
# 0.01 degree of latitude is 6371008.8 * pi / 180 * 0.01 = 1111.95 m.
FIXES = [  # truck-1's tracker: 0.01 + 0.02 deg on 03-02 (3335.85 m); on 03-03 a repeat of
    # the last place then 0.01 deg (the overnight leg is 0 m): 1111.95 m
    (at("10:00"), 52.00), (at("10:01"), 52.01), (at("10:02"), 52.03),
    (at("08:00", 1), 52.03), (at("08:05", 1), 52.04),
]  # fmt: skip


def insert_orders(conn: psycopg.Connection) -> dict[str, int]:
    conn.execute("INSERT INTO customers (ref, name) VALUES ('C-1', 'Customer')")
    ids = {}
    for number, site, window_end, events, loading in ORDERS:
        state = events[-1][1]
        ids[number] = conn.execute(
            "INSERT INTO orders (number, customer_id, state, dest_address, window_end,"
            " origin_site, created_at, created_by) SELECT %s, id, %s, 'x', %s, %s, %s, 'test'"
            " FROM customers RETURNING id",
            (number, state, window_end, site, events[0][0]),
        ).fetchone()[0]
        for time, to_state in events:
            kind = "created" if to_state == "created" else "state"
            conn.execute(
                "INSERT INTO order_events (order_id, at, kind, to_state, actor)"
                " VALUES (%s, %s, %s, %s, 'test')",
                (ids[number], time, kind, to_state),
            )
        if loading:
            scan = _outcome(conn, *loading)
            conn.execute(
                "INSERT INTO order_events (order_id, at, kind, evidence_event_id, actor)"
                " VALUES (%s, %s, 'loaded', %s, 'test')",
                (ids[number], loading[2], scan),
            )
    conn.execute(
        "INSERT INTO deliveries (order_id, delivered_at, confirmed_by) VALUES (%s, %s, 'd')",
        (ids["SO-2"], at("13:00")),
    )
    return ids


def _outcome(conn: psycopg.Connection, site: str, door: str, time: datetime,
             verdict: str = "accepted") -> uuid.UUID:  # fmt: skip
    event_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO scan_outcomes (event_id, decided_at, site, gateway, door, match_kind,"
        " verdict) VALUES (%s, %s, %s, 'gw', %s, 'package', %s)",
        (event_id, time, site, door, verdict),
    )
    return event_id


def insert_rest(conn: psycopg.Connection, ids: dict[str, int]) -> None:
    # Door scans besides the three loading ones (wh1/door-1 09:00, wh1/door-2 09:30,
    # wh2/door-1 10:00): wh1/door-1 has 3 accepted in the 09:00 hour, 1 in the 10:00 hour.
    for time in (at("09:10"), at("09:50"), at("10:05")):
        _outcome(conn, "wh1", "door-1", time)
    _outcome(conn, "wh1", "door-1", at("09:20"), verdict="wrong_truck")  # not throughput
    _outcome(conn, "wh1", "door-1", at("09:00", 3))  # out of range
    conn.execute("INSERT INTO vehicles (id, name) VALUES ('truck-1', 'T1'), ('truck-2', 'T2')")
    conn.execute(
        "UPDATE trips SET vehicle_id = CASE id WHEN 'T1' THEN 'truck-1' ELSE 'truck-2' END"
    )
    exceptions = [  # (kind, status, order, trip, opened)
        ("damage", "resolved", ids["SO-1"], None, at("09:00")),
        ("delay", "open", ids["SO-2"], None, at("10:00")),
        ("wrong_load", "acknowledged", None, "T1", at("08:00", 1)),
        ("other", "open", None, None, at("08:00", 3)),  # out of range
    ]
    for kind, status, order_id, trip, opened in exceptions:
        conn.execute(
            "INSERT INTO exceptions (kind, status, summary, order_id, trip_id, opened_at,"
            " opened_by) VALUES (%s, %s, 'x', %s, %s, %s, 'test')",
            (kind, status, order_id, trip, opened),
        )
    conn.execute(
        "INSERT INTO trackers (site, gateway, device, vehicle_id, assigned_by)"
        " VALUES ('wh1', 'gw', 'gps-1', 'truck-1', 'test')"
    )
    fixes = [(t, lat, "gps-1") for t, lat in FIXES] + [(at("10:01"), 60.0, "gps-9")]  # untracked
    for n, (time, lat, device) in enumerate(fixes):
        conn.execute(
            "INSERT INTO positions (time, event_id, site, gateway, device, seq, lat, lon,"
            " fix_quality, received_at) VALUES (%s, %s, 'wh1', 'gw', %s, %s, %s, 13.0, 1, %s)",
            (time, uuid.uuid4(), device, n, lat, time),
        )
    fence = conn.execute(
        "INSERT INTO geofences (name, kind, feature, created_by) VALUES ('f', 'customer_site',"
        " '{}', 'test') RETURNING id"
    ).fetchone()[0]
    # Dwell: T1 stop 1 arrives 10:30 and exits 10:45 (15 min; an exit before the arrival
    # does not count); stop 2 arrives 12:40 and SO-2 is delivered there at 13:00 (20 min);
    # stop 3 arrives 13:30 and is still open. T2 (truck-2) stop 1: 03-03 09:00 → 09:45.
    stops = [("T1", 1, at("10:30")), ("T1", 2, at("12:40")), ("T1", 3, at("13:30")),
             ("T2", 1, at("09:00", 1))]  # fmt: skip
    for trip, seq, arrived in stops:
        conn.execute(
            "INSERT INTO trip_stops (trip_id, seq, fence_id, state, arrived_at)"
            " VALUES (%s, %s, %s, 'arrived', %s)",
            (trip, seq, fence, arrived),
        )
    conn.execute("UPDATE orders SET trip_id = 'T1', stop_seq = 2 WHERE number = 'SO-2'")
    for vehicle, time in (("truck-1", at("10:00")), ("truck-1", at("10:45")),
                          ("truck-2", at("09:45", 1))):  # fmt: skip
        conn.execute(
            "INSERT INTO fence_transitions (vehicle_id, fence_id, kind, at, confirmed_at)"
            " VALUES (%s, %s, 'exited', %s, %s)",
            (vehicle, fence, time, time),
        )


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    c = make_client(database_url)
    with psycopg.connect(database_url) as conn:
        insert_rest(conn, insert_orders(conn))
    yield c
    c.__exit__(None, None, None)


def get(client: TestClient, path: str, **params: object) -> dict:
    r = client.get(f"{API}/{path}", params={**RANGE, **params})
    assert r.status_code == 200, r.text
    return r.json()


def figures(rows: list[dict]) -> dict[tuple, tuple]:
    return {(r["group"], r["stage"]): (r["count"], r["p50_min"], r["p90_min"], r["mean_min"])
            for r in rows if r["count"]}  # fmt: skip


def test_stage_durations_overall_and_per_day(client: TestClient) -> None:
    report = get(client, "stages")
    assert (report["from"], report["group"], report["orders"]) == (RANGE["from"], "day", 4)
    assert report["stages"] == ["created", "picking", "packed", "loaded", "in_transit", "total"]
    # created [10, 20, 30, 90]: p50 between 20 and 30; p90 at rank 2.7: 30 + 0.7 * 60 = 72.
    # in_transit [90, 180, 1440]: p90 at rank 1.8: 180 + 0.8 * 1260 = 1188.
    assert figures(report["overall"]) == {
        (None, "created"): (4, 25.0, 72.0, 37.5),
        (None, "picking"): (2, 35.0, 39.0, 35.0),
        (None, "packed"): (3, 30.0, 30.0, 26.67),
        (None, "loaded"): (3, 30.0, 30.0, 23.33),
        (None, "in_transit"): (3, 180.0, 1188.0, 570.0),
        (None, "total"): (3, 300.0, 1268.0, 663.33),
    }
    by_day = figures(report["rows"])
    # SO-3's last two stages end on 03-03; the day's in_transit is [90, 180].
    assert by_day[("2026-03-02", "in_transit")] == (2, 135.0, 171.0, 135.0)
    assert by_day[("2026-03-02", "total")] == (2, 240.0, 288.0, 240.0)
    assert by_day[("2026-03-03", "in_transit")] == (1, 1440.0, 1440.0, 1440.0)
    assert {k for k in by_day if k[0] == "2026-03-03"} == {
        ("2026-03-03", "in_transit"),
        ("2026-03-03", "total"),
    }


def test_stage_durations_per_site_and_door_and_filtered(client: TestClient) -> None:
    by_site = figures(get(client, "stages", group="site")["rows"])
    # wh1's created: SO-1 10, SO-2 20, SO-4 90 -> p90 at rank 1.8: 20 + 0.8 * 70 = 76.
    assert by_site[("wh1", "created")] == (3, 20.0, 76.0, 40.0)
    assert by_site[("wh2", "in_transit")] == (1, 1440.0, 1440.0, 1440.0)
    assert ("wh2", "picking") not in by_site  # SO-3 skipped picking
    by_door = figures(get(client, "stages", group="door")["rows"])
    assert by_door[("wh1/door-1", "packed")] == (1, 20.0, 20.0, 20.0)  # SO-1
    assert by_door[("wh1/door-2", "in_transit")] == (1, 180.0, 180.0, 180.0)  # SO-2
    assert by_door[("wh2/door-1", "loaded")] == (1, 10.0, 10.0, 10.0)  # SO-3
    assert by_door[(None, "created")] == (1, 90.0, 90.0, 90.0)  # SO-4 was never loaded
    # door-1 names a door at both sites (SO-1, SO-3) until the site narrows it.
    door_1 = figures(get(client, "stages", door="door-1")["overall"])
    assert door_1[(None, "created")] == (2, 20.0, 28.0, 20.0)
    only = get(client, "stages", door="door-1", site="wh1")
    assert only["orders"] == 1 and figures(only["overall"])[(None, "total")][1] == 180.0


def test_on_time_rate_per_day_leaves_out_orders_without_a_window(client: TestClient) -> None:
    report = get(client, "on-time")
    # SO-1 at 11:00 (window 12:00) on time; SO-2's proof says 13:00: late; SO-3 no window.
    assert report["rows"] == [
        {"day": "2026-03-02", "delivered": 2, "on_time": 1, "late": 1, "no_window": 0,
         "on_time_rate": 0.5},
        {"day": "2026-03-03", "delivered": 1, "on_time": 0, "late": 0, "no_window": 1,
         "on_time_rate": None},
    ]  # fmt: skip
    assert report["total"] == {"day": None, "delivered": 3, "on_time": 1, "late": 1,
                               "no_window": 1, "on_time_rate": 0.5}  # fmt: skip
    assert [(o["number"], o["outcome"]) for o in report["orders"]] == [
        ("SO-1", "on_time"), ("SO-2", "late"), ("SO-3", "no_window")
    ]  # fmt: skip
    assert get(client, "on-time", site="wh2")["total"]["no_window"] == 1


def test_exceptions_by_kind_and_day(client: TestClient) -> None:
    report = get(client, "exceptions")
    assert report["total"] == 3  # the one of 03-05 is out of range
    assert report["by_kind"] == [
        {"kind": "damage", "count": 1, "unresolved": 0},
        {"kind": "delay", "count": 1, "unresolved": 1},
        {"kind": "wrong_load", "count": 1, "unresolved": 1},
    ]
    assert [(r["day"], r["kind"], r["count"]) for r in report["rows"]] == [
        ("2026-03-02", "damage", 1), ("2026-03-02", "delay", 1), ("2026-03-03", "wrong_load", 1)
    ]  # fmt: skip
    assert get(client, "exceptions", site="wh2")["total"] == 0  # SO-1, SO-2 and T1 are wh1's


def test_throughput_counts_accepted_scans_per_door_and_hour(client: TestClient) -> None:
    report = get(client, "throughput")
    assert [(r["site"], r["door"], r["hour"], r["accepted"]) for r in report["rows"]] == [
        ("wh1", "door-1", "2026-03-02T09:00:00Z", 3),  # 09:00, 09:10, 09:50; not 09:20's refusal
        ("wh1", "door-1", "2026-03-02T10:00:00Z", 1),
        ("wh1", "door-2", "2026-03-02T09:00:00Z", 1),
        ("wh2", "door-1", "2026-03-02T10:00:00Z", 1),
    ]
    assert report["doors"][0] == {"site": "wh1", "door": "door-1", "accepted": 4,
                                  "active_hours": 2, "peak_per_hour": 3}  # fmt: skip
    assert len(get(client, "throughput", site="wh1", door="door-1")["rows"]) == 2


def test_vehicle_distance_and_stop_dwell(client: TestClient) -> None:
    report = get(client, "vehicles")
    # 03-02: 0.03 deg = 3335.85 m; 03-03: 0 m overnight + 0.01 deg = 1111.95 m. Dwell on 03-02:
    # [15, 20] -> p50 17.5, p90 15 + 0.9 * 5 = 19.5; the open stop counts but has no dwell.
    assert report["rows"] == [
        {"vehicle_id": "truck-1", "day": "2026-03-02", "distance_km": 3.336, "fixes": 3,
         "stops": 3, "dwell_p50_min": 17.5, "dwell_p90_min": 19.5, "dwell_mean_min": 17.5},
        {"vehicle_id": "truck-1", "day": "2026-03-03", "distance_km": 1.112, "fixes": 2,
         "stops": 0, "dwell_p50_min": None, "dwell_p90_min": None, "dwell_mean_min": None},
        {"vehicle_id": "truck-2", "day": "2026-03-03", "distance_km": 0.0, "fixes": 0,
         "stops": 1, "dwell_p50_min": 45.0, "dwell_p90_min": 45.0, "dwell_mean_min": 45.0},
    ]  # fmt: skip
    assert [(s["trip_id"], s["seq"], s["left_by"], s["dwell_min"]) for s in report["stops"]] == [
        ("T1", 1, "exit", 15.0), ("T1", 2, "delivery", 20.0), ("T1", 3, None, None),
        ("T2", 1, "exit", 45.0),
    ]  # fmt: skip
    assert [r["day"] for r in get(client, "vehicles", vehicle="truck-2")["rows"]] == ["2026-03-03"]


def test_csv_and_xlsx_files_hold_the_same_figures(client: TestClient) -> None:
    r = client.get(f"{API}/stages", params={**RANGE, "group": "site", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        'attachment; filename="analytics-stages-20260302-20260304.csv"'
    )
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8"))))
    assert rows[0] == ["group", "stage", "count", "p50_min", "p90_min", "mean_min"]
    assert ["wh1", "created", "3", "20.0", "76.0", "40.0"] in rows
    assert ["wh2", "picking", "0", "", "", ""] in rows
    r = client.get(f"{API}/on-time", params={**RANGE, "format": "xlsx"})
    assert r.status_code == 200 and "analytics-on-time-" in r.headers["content-disposition"]
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["on_time", "orders"]
    on_time = [list(row) for row in book["on_time"].iter_rows(values_only=True)]
    assert on_time[0] == ["day", "delivered", "on_time", "late", "no_window", "on_time_rate"]
    assert on_time[1:] == [
        ["2026-03-02", 2, 1, 1, 0, 0.5], ["2026-03-03", 1, 0, 0, 1, None], [None, 3, 1, 1, 1, 0.5]
    ]  # fmt: skip
    orders = list(book["orders"].iter_rows(values_only=True))
    assert orders[2][:2] == ("SO-2", "wh1") and orders[2][4] == "late"
    r = client.get(f"{API}/vehicles", params={**RANGE, "format": "xlsx"})
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["vehicles", "stops"]
    assert list(book["vehicles"].iter_rows(values_only=True))[1][:4] == (
        "truck-1", "2026-03-02", 3.336, 3
    )  # fmt: skip


def test_roles_and_refusals(client: TestClient) -> None:
    viewer, dispatcher, dock = (login(client, r) for r in ("viewer", "dispatcher", "dock"))
    for report in ("stages", "on-time", "exceptions", "throughput", "vehicles"):
        path = f"{API}/{report}"
        assert client.get(path, params=RANGE, headers=viewer).status_code == 200
        assert client.get(path, params=RANGE, headers=dispatcher).status_code == 200
        assert client.get(path, params=RANGE, headers=dock).status_code == 403
        assert client.get(path, params=RANGE, headers={"Authorization": ""}).status_code == 401
    backwards = client.get(f"{API}/stages", params={"from": RANGE["to"], "to": RANGE["from"]})
    assert backwards.status_code == 422 and "must be before" in backwards.json()["detail"]
    long = client.get(f"{API}/stages", params={"from": "2024-01-01T00:00Z", "to": RANGE["to"]})
    assert long.status_code == 422 and "at most 366 days" in long.json()["detail"]
    assert client.get(f"{API}/on-time", params={"door": "door-1"}).status_code == 422
    assert client.get(f"{API}/stages", params={"group": "week"}).status_code == 422
    assert client.get(f"{API}/stages", params={"format": "pdf"}).status_code == 422
    assert client.get(f"{API}/stages", params={"from": "2026-03-02T00:00"}).status_code == 422
