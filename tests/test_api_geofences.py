"""Geofences through the API: drawn as GeoJSON, refused with the shape's reason, redrawn
with a version check, deactivated; and every order with lat/lon gets its destination fence."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from geofence import FenceKind, fence_from_geojson
from tests.test_api_orders import make_client, order

API = "/api/v1"
SQUARE = [[13.40, 52.50], [13.41, 52.50], [13.41, 52.51], [13.40, 52.51], [13.40, 52.50]]


def feature(geometry: dict, **props: object) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def warehouse(site: str = "wh1", ring: list | None = None) -> dict:
    polygon = {"type": "Polygon", "coordinates": [ring or SQUARE]}
    return feature(polygon, name=f"Warehouse {site}", kind="warehouse", site=site)


def circle(lon: float, lat: float, radius_m: float, **props: object) -> dict:
    point = {"type": "Point", "coordinates": [lon, lat]}
    return feature(
        point, radius_m=radius_m, **{"name": "Customer", "kind": "customer_site", **props}
    )


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    c = make_client(database_url, default_fence_radius_m=75)
    yield c
    c.__exit__(None, None, None)


def test_a_fence_is_drawn_read_back_and_listed_as_geojson(client: TestClient) -> None:
    r = client.post(f"{API}/geofences", json=warehouse())
    assert r.status_code == 201, r.text
    wh = r.json()
    assert (wh["name"], wh["kind"], wh["site"], wh["version"]) == (
        "Warehouse wh1",
        "warehouse",
        "wh1",
        1,
    )
    assert wh["created_by"] == "admin" and wh["active"] is True
    # What is stored reads back through the shape module as the same fence, under the row id.
    fence = fence_from_geojson(wh["feature"])
    assert fence.id == str(wh["id"]) and fence.kind is FenceKind.WAREHOUSE
    assert fence.geometry.contains_properly(fence.geometry.centroid)
    c = client.post(f"{API}/geofences", json=circle(13.45, 52.52, 120, name="ACME dock")).json()
    assert fence_from_geojson(c["feature"]).circle.radius_m == 120
    assert client.get(f"{API}/geofences/{c['id']}").json()["name"] == "ACME dock"

    listed = client.get(f"{API}/geofences").json()
    assert [f["id"] for f in listed] == [c["id"], wh["id"]]  # newest first
    only = client.get(f"{API}/geofences", params={"kind": "warehouse", "site": "wh1"}).json()
    assert [f["id"] for f in only] == [wh["id"]]
    assert client.get(f"{API}/geofences", params={"site": "wh9"}).json() == []
    collection = client.get(f"{API}/geofences", params={"format": "geojson"}).json()
    assert collection["type"] == "FeatureCollection"
    by_id = {f["id"]: f for f in collection["features"]}
    assert by_id[str(c["id"])]["properties"]["name"] == "ACME dock"
    assert by_id[str(c["id"])]["geometry"] == {"type": "Point", "coordinates": [13.45, 52.52]}
    assert by_id[str(wh["id"])]["properties"]["site"] == "wh1"
    # A map can hand each feature straight back to the shape reader.
    assert {fence_from_geojson(f).kind for f in collection["features"]} == {
        FenceKind.WAREHOUSE,
        FenceKind.CUSTOMER_SITE,
    }
    assert client.get(f"{API}/geofences/999999").status_code == 404
    typo = client.get(f"{API}/geofences", params={"knid": "warehouse"})
    assert typo.status_code == 422 and "knid" in typo.json()["detail"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (warehouse(ring=[*SQUARE[:-1], [13.40, 52.505]]), "not closed"),
        (circle(13.4, 52.5, 0), "radius_m must be"),
        (circle(13.4, 95.0, 100), "out of range"),
        (circle(13.4, 52.5, 100, kind="castle"), "kind 'castle' is not one of"),
        (feature({"type": "LineString", "coordinates": SQUARE}, name="x", kind="depot"), "Polygon"),
        (feature({"type": "Polygon", "coordinates": [SQUARE]}, kind="depot"), "properties.name"),
        (feature({"type": "Polygon", "coordinates": [SQUARE]}, name="D", kind="depot"), "site"),
        ({"type": "FeatureCollection", "features": []}, "expected a GeoJSON Feature"),
    ],
)
def test_a_shape_that_cannot_be_a_fence_is_refused_with_the_reason(
    client: TestClient, body: dict, reason: str
) -> None:
    r = client.post(f"{API}/geofences", json=body)
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert client.get(f"{API}/geofences").json() == []


def test_a_bow_tie_is_refused_unless_repaired(client: TestClient) -> None:
    bow = [[13.40, 52.50], [13.41, 52.51], [13.41, 52.50], [13.40, 52.51], [13.40, 52.50]]
    r = client.post(f"{API}/geofences", json=warehouse(ring=bow))
    assert r.status_code == 422 and "repair" in r.json()["detail"]
    fixed = client.post(f"{API}/geofences", params={"repair": True}, json=warehouse(ring=bow))
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["feature"]["geometry"]["type"] == "MultiPolygon"


def test_a_fence_is_renamed_and_redrawn_with_a_version_check(client: TestClient) -> None:
    fence = client.post(f"{API}/geofences", json=circle(13.45, 52.52, 120)).json()
    url = f"{API}/geofences/{fence['id']}"
    renamed = client.patch(url, json={"version": 1, "name": "ACME north gate"})
    assert renamed.status_code == 200 and renamed.json()["version"] == 2
    stale = client.patch(url, json={"version": 1, "name": "Lost update"})
    assert stale.status_code == 409 and "GET it again" in stale.json()["detail"]
    redrawn = client.patch(url, json={"version": 2, "feature": circle(13.46, 52.53, 300)})
    assert redrawn.status_code == 200, redrawn.text
    got = redrawn.json()
    assert got["version"] == 3 and got["name"] == "ACME north gate"
    assert fence_from_geojson(got["feature"]).circle.radius_m == 300
    assert fence_from_geojson(got["feature"]).id == str(fence["id"])
    other_kind = client.patch(url, json={"version": 3, "feature": warehouse()})
    assert other_kind.status_code == 422 and "deactivate it" in other_kind.json()["detail"]
    bad = client.patch(url, json={"version": 3, "feature": circle(13.4, 52.5, -5)})
    assert bad.status_code == 422 and "radius_m" in bad.json()["detail"]
    assert client.get(url).json()["version"] == 3


def test_a_fence_is_deactivated_unless_an_unfinished_trip_stops_in_it(
    client: TestClient, database_url: str
) -> None:
    fence = client.post(f"{API}/geofences", json=circle(13.45, 52.52, 120)).json()
    url = f"{API}/geofences/{fence['id']}"
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO trip_stops (trip_id, seq, fence_id) VALUES ('T1', 1, %s)", (fence["id"],)
        )
    busy = client.post(f"{url}/deactivate", json={"version": 1})
    assert busy.status_code == 409 and "T1" in busy.json()["detail"]
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE trips SET state = 'completed' WHERE id = 'T1'")
    off = client.post(f"{url}/deactivate", json={"version": 1})
    assert off.status_code == 200 and off.json()["active"] is False
    assert client.get(f"{API}/geofences").json() == []
    assert [f["id"] for f in client.get(f"{API}/geofences", params={"active": False}).json()] == [
        fence["id"]
    ]


def test_each_order_with_a_position_gets_its_destination_fence(
    client: TestClient, database_url: str
) -> None:
    assert client.post(f"{API}/orders", json=order("SO-1", qty=1)).status_code == 201
    wide = order("SO-2", qty=1)
    wide["destination"]["radius_m"] = 400
    assert client.post(f"{API}/orders", json=wide).status_code == 201
    nowhere = order("SO-3", qty=1)
    nowhere["destination"] = {"address": "Somewhere without coordinates"}
    assert client.post(f"{API}/orders", json=nowhere).status_code == 201
    with psycopg.connect(database_url) as conn:
        rows = dict(
            conn.execute("SELECT number, dest_fence_id FROM orders ORDER BY number").fetchall()
        )
    assert rows["SO-3"] is None
    sites = client.get(f"{API}/geofences", params={"kind": "customer_site"}).json()
    by_order = {f["order_number"]: f for f in sites}
    assert set(by_order) == {"SO-1", "SO-2"}
    assert by_order["SO-1"]["id"] == rows["SO-1"]
    one = fence_from_geojson(by_order["SO-1"]["feature"])
    assert one.circle is not None and one.circle.radius_m == 75  # Settings.default_fence_radius_m
    assert (one.circle.lon, one.circle.lat) == (13.4, 52.5)
    assert fence_from_geojson(by_order["SO-2"]["feature"]).circle.radius_m == 400


def test_an_order_too_near_the_pole_for_a_fence_is_refused_and_not_stored(
    client: TestClient,
) -> None:
    polar = order("SO-9", qty=1)
    polar["destination"].update(lat=89.0, lon=0.0)
    r = client.post(f"{API}/orders", json=polar)
    assert r.status_code == 422 and "SO-9" in r.json()["detail"]
    assert client.get(f"{API}/orders/SO-9").status_code == 404
