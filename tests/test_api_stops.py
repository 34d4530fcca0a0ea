"""Trips with a driver, a route and stops; trackers on vehicles."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.test_api_geofences import circle, warehouse
from tests.test_api_orders import make_client, order

API = "/api/v1"
ROUTE = {"type": "LineString", "coordinates": [[13.40, 52.50], [13.45, 52.52], [13.50, 52.55]]}


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """Admin client; products, trips T1/T2 (make_client), truck-1, wh1's warehouse fence."""
    c = make_client(database_url)
    assert c.post(f"{API}/vehicles", json={"id": "truck-1", "name": "Truck 1"}).status_code == 201
    assert c.post(f"{API}/geofences", json=warehouse("wh1")).status_code == 201
    yield c
    c.__exit__(None, None, None)


def new_order(client: TestClient, number: str, lon: float, lat: float, **extra: object) -> None:
    body = order(number, qty=1, **extra)
    body["destination"].update(lon=lon, lat=lat)
    assert client.post(f"{API}/orders", json=body).status_code == 201


def dest_fence(database_url: str, number: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT dest_fence_id FROM orders WHERE number = %s", (number,))
        return row.fetchone()[0]


def planned(database_url: str) -> dict[str, tuple[str | None, int | None]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT number, trip_id, stop_seq FROM orders").fetchall()
    return {n: (t, s) for n, t, s in rows}


def test_a_trip_gets_driver_route_and_its_sites_warehouse_fence(client: TestClient) -> None:
    wh = client.get(f"{API}/geofences", params={"kind": "warehouse"}).json()[0]
    body = {"id": "T9", "vehicle": "truck-1", "origin_site": "wh1", "driver": "dana"}
    r = client.post(f"{API}/trips", json={**body, "route": ROUTE})
    assert r.status_code == 201, r.text
    trip = r.json()
    assert (trip["driver"], trip["origin_fence_id"], trip["route"]) == ("dana", wh["id"], ROUTE)
    assert trip["stops"] == [] and trip["completed_at"] is None
    elsewhere = client.post(f"{API}/trips", json={"id": "T10", "origin_site": "wh7"}).json()
    assert elsewhere["origin_fence_id"] is None and elsewhere["route"] is None
    depot = client.post(f"{API}/geofences", json=circle(13.3, 52.4, 300, kind="depot", site="d1"))
    explicit = {"id": "T11", "origin_site": "wh1", "origin_fence_id": depot.json()["id"]}
    assert (
        client.post(f"{API}/trips", json=explicit).json()["origin_fence_id"] == depot.json()["id"]
    )
    unknown = client.post(f"{API}/trips", json={**explicit, "id": "T12", "origin_fence_id": 999})
    assert unknown.status_code == 422 and "no geofence 999" in unknown.json()["detail"]
    site = client.post(f"{API}/geofences", json=circle(13.5, 52.5, 100)).json()["id"]
    customer = client.post(f"{API}/trips", json={**explicit, "id": "T12", "origin_fence_id": site})
    assert customer.status_code == 422 and "warehouse or depot" in customer.json()["detail"]

    changed = client.patch(f"{API}/trips/T9", json={"driver": "eli", "route": None})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["driver"], changed.json()["route"]) == ("eli", None)
    assert changed.json()["vehicle_id"] == "truck-1"  # left out, kept
    assert client.patch(f"{API}/trips/nope", json={"driver": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        ({"type": "LineString", "coordinates": [[13.4, 52.5]]}, "at least 2"),
        ({"type": "LineString", "coordinates": [[52.5, 13.4], [52.6, 200.0]]}, "out of range"),
        ({"type": "LineString", "coordinates": [[13.4, 52.5], [13.4]]}, "position 1"),
        ({"type": "LineString", "coordinates": [[13.4, 52.5], [13.4, 52.5]]}, "same point"),
        ({"type": "Polygon", "coordinates": [[13.4, 52.5], [13.5, 52.5]]}, "LineString"),
    ],
)
def test_a_route_that_is_not_a_usable_line_is_refused(
    client: TestClient, route: dict, reason: str
) -> None:
    r = client.post(f"{API}/trips", json={"id": "T9", "origin_site": "wh1", "route": route})
    assert r.status_code == 422
    assert reason in r.json()["detail"]


def test_stops_plan_orders_onto_the_trip_in_order(client: TestClient, database_url: str) -> None:
    new_order(client, "SO-1", 13.45, 52.52)
    new_order(client, "SO-2", 13.50, 52.55, trip="T2")
    new_order(client, "SO-3", 13.50, 52.55)
    new_order(client, "SO-4", 13.60, 52.60, trip="T1")
    f1, f2, f3 = (dest_fence(database_url, n) for n in ("SO-1", "SO-2", "SO-3"))
    r = client.put(
        f"{API}/trips/T1/stops",
        json={"stops": [{"orders": ["SO-1"]}, {"orders": ["SO-2", "SO-3"], "fence_id": f2}]},
    )
    assert r.status_code == 200, r.text
    trip = r.json()
    assert [(s["seq"], s["fence_id"], s["orders"]) for s in trip["stops"]] == [
        (1, f1, ["SO-1"]),
        (2, f2, ["SO-2", "SO-3"]),
    ]
    stop = trip["stops"][0]
    assert stop["state"] == "pending" and stop["fence_name"] == "order SO-1"
    assert {
        k: stop[k] for k in ("eta", "eta_earliest", "eta_latest", "arrived_at")
    } == dict.fromkeys(("eta", "eta_earliest", "eta_latest", "arrived_at"))
    assert planned(database_url) == {
        "SO-1": ("T1", 1),
        "SO-2": ("T1", 2),  # moved off T2
        "SO-3": ("T1", 2),
        "SO-4": ("T1", None),  # planned on T1 before, in no stop: stays planned, no stop
    }
    assert client.get(f"{API}/trips/T1").json()["stops"] == trip["stops"]
    history = client.get(f"{API}/orders/SO-2/history").json()[-1]
    assert history["kind"] == "changed"
    assert history["detail"] == {
        "trip_id": {"from": "T2", "to": "T1"},
        "stop_seq": {"from": None, "to": 2},
    }
    # Setting them again replaces them: SO-1 drops out of every stop but stays planned.
    again = client.put(
        f"{API}/trips/T1/stops", json={"stops": [{"orders": ["SO-3"], "fence_id": f3}]}
    )
    assert [s["orders"] for s in again.json()["stops"]] == [["SO-3"]]
    assert planned(database_url)["SO-1"] == ("T1", None)
    assert planned(database_url)["SO-3"] == ("T1", 1)
    # Planning an order onto another trip takes it out of its stop.
    client.post(f"{API}/trips/T2/orders", json={"orders": ["SO-3"]})
    assert planned(database_url)["SO-3"] == ("T2", None)


def test_stops_are_refused_with_the_reason(client: TestClient, database_url: str) -> None:
    new_order(client, "SO-1", 13.45, 52.52)
    new_order(client, "SO-2", 13.50, 52.55)
    nowhere = order("SO-3", qty=1)
    nowhere["destination"] = {"address": "No coordinates"}
    client.post(f"{API}/orders", json=nowhere)

    def put(stops: list[dict]) -> str:
        r = client.put(f"{API}/trips/T1/stops", json={"stops": stops})
        assert r.status_code == 422, r.text
        return r.json()["detail"]

    assert "split them into one stop per fence" in put([{"orders": ["SO-1", "SO-2"]}])
    assert "has no destination fence" in put([{"orders": ["SO-3"]}])
    assert "delivered at one stop" in put([{"orders": ["SO-1"]}, {"orders": ["SO-1"]}])
    assert "no order SO-404" in put([{"orders": ["SO-404"]}])
    assert "neither orders nor a fence_id" in put([{"orders": []}])
    assert "no geofence 999" in put([{"orders": ["SO-3"], "fence_id": 999}])
    client.post(f"{API}/orders/SO-2/cancel", json={"version": 1, "reason": "customer changed mind"})
    assert "the order is cancelled" in put([{"orders": ["SO-2"]}])
    assert planned(database_url)["SO-1"] == (None, None)  # nothing half-done
    assert client.put(f"{API}/trips/T404/stops", json={"stops": []}).status_code == 404


def test_stops_and_trip_are_fixed_once_it_departs(client: TestClient, database_url: str) -> None:
    new_order(client, "SO-1", 13.45, 52.52)
    client.put(f"{API}/trips/T1/stops", json={"stops": [{"orders": ["SO-1"]}]})
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE trips SET state = 'departed', departed_at = now() WHERE id = 'T1'")
    r = client.put(f"{API}/trips/T1/stops", json={"stops": []})
    assert r.status_code == 409 and "fixed when it left" in r.json()["detail"]
    assert client.patch(f"{API}/trips/T1", json={"driver": "x"}).status_code == 409
    assert len(client.get(f"{API}/trips/T1").json()["stops"]) == 1
    fence = dest_fence(database_url, "SO-1")
    busy = client.post(f"{API}/geofences/{fence}/deactivate", json={"version": 1})
    assert busy.status_code == 409 and "T1" in busy.json()["detail"]


def test_a_tracker_is_assigned_listed_moved_and_removed(client: TestClient) -> None:
    url = f"{API}/trackers/yard/truck-1-gw/gps0"
    r = client.put(url, json={"vehicle": "truck-1"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["vehicle_id"], got["vehicle_name"], got["assigned_by"]) == (
        "truck-1",
        "Truck 1",
        "admin",
    )
    client.post(f"{API}/vehicles", json={"id": "van-2", "name": "Van 2"})
    moved = client.put(url, json={"vehicle": "van-2"}).json()
    assert moved["vehicle_id"] == "van-2" and moved["assigned_at"] >= got["assigned_at"]
    client.put(f"{API}/trackers/yard/van-gw/gps1", json={"vehicle": "van-2"})
    listed = client.get(f"{API}/trackers", params={"vehicle": "van-2"}).json()
    assert [(t["gateway"], t["device"]) for t in listed] == [
        ("truck-1-gw", "gps0"),
        ("van-gw", "gps1"),
    ]
    unknown = client.put(url, json={"vehicle": "ghost"})
    assert unknown.status_code == 422 and "POST /api/v1/vehicles" in unknown.json()["detail"]
    client.post(f"{API}/vehicles/truck-1/deactivate")
    off = client.put(url, json={"vehicle": "truck-1"})
    assert off.status_code == 422 and "reactivate" in off.json()["detail"]
    assert client.delete(url).status_code == 204
    again = client.delete(url)
    assert again.status_code == 404 and "GET /api/v1/trackers" in again.json()["detail"]
    assert [t["device"] for t in client.get(f"{API}/trackers").json()] == ["gps1"]
