"""Proof of delivery: the driver confirms an order on its way; the lifecycle table decides."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.test_api_orders import make_client, order

API = "/api/v1"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """Admin client; trip T1 driven by driver dana, orders SO-1 (in transit, two packages,
    stop 1 of T1) and SO-2 (just created)."""
    c = make_client(database_url)
    for number, packages in (("SO-1", 2), ("SO-2", 1)):
        r = c.post(f"{API}/orders", json=order(number, qty=1, packages=packages, trip="T1"))
        assert r.status_code == 201, r.text
    assert c.patch(f"{API}/trips/T1", json={"driver": "dana"}).status_code == 200
    assert c.put(f"{API}/trips/T1/stops", json={"stops": [{"orders": ["SO-1"]}]}).status_code == 200
    for name in ("dana", "olaf"):
        user = {"username": name, "password": f"{name}-password-long", "role": "driver"}
        assert c.post(f"{API}/users", json=user).status_code == 201
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE trips SET state = 'departed', departed_at = now() WHERE id = 'T1'")
        conn.execute("UPDATE packages SET state = 'loaded', loaded_trip = 'T1'")
        conn.execute("UPDATE orders SET state = 'in_transit' WHERE number = 'SO-1'")
    yield c
    c.__exit__(None, None, None)


def as_user(client: TestClient, name: str) -> dict[str, str]:
    r = client.post(
        f"{API}/auth/login", json={"username": name, "password": f"{name}-password-long"}
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_the_driver_delivers_with_proof(client: TestClient, database_url: str) -> None:
    proof = {
        "lat": 52.5001,
        "lon": 13.4002,
        "photo_ref": "s3://pod/so-1.jpg",
        "signature_ref": "sig-1",
    }
    r = client.post(f"{API}/orders/SO-1/deliver", json=proof, headers=as_user(client, "dana"))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["state"] == "delivered" and got["confirmed_by"] == "dana"
    assert got["packages_delivered"] == 2 and got["photo_ref"] == "s3://pod/so-1.jpg"
    order_now = client.get(f"{API}/orders/SO-1").json()
    assert order_now["state"] == "delivered"
    assert {p["state"] for p in order_now["packages"]} == {"delivered"}
    last = client.get(f"{API}/orders/SO-1/history").json()[-1]
    assert (last["kind"], last["from_state"], last["to_state"]) == (
        "state",
        "in_transit",
        "delivered",
    )
    assert (last["trigger"], last["actor"]) == ("delivered", "dana")
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT lat, lon, confirmed_by, photo_ref, signature_ref FROM deliveries"
        ).fetchone()
    assert row == (52.5001, 13.4002, "dana", "s3://pod/so-1.jpg", "sig-1")
    assert client.get(f"{API}/trips/T1").json()["stops"][0]["state"] == "done"

    twice = client.post(f"{API}/orders/SO-1/deliver", headers=as_user(client, "dana"))
    assert twice.status_code == 409 and "already delivered" in twice.json()["detail"]


def test_an_order_not_on_its_way_cannot_be_delivered(client: TestClient, database_url: str) -> None:
    r = client.post(f"{API}/orders/SO-2/deliver")  # a dispatcher (admin), no proof
    assert r.status_code == 409
    assert "cannot move an order from created" in r.json()["detail"]
    assert "not left the warehouse" in r.json()["detail"]
    assert client.get(f"{API}/orders/SO-2").json()["state"] == "created"
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)
    assert client.post(f"{API}/orders/SO-404/deliver").status_code == 404


def test_only_the_trips_driver_or_a_dispatcher_confirms(client: TestClient) -> None:
    r = client.post(f"{API}/orders/SO-1/deliver", headers=as_user(client, "olaf"))
    assert r.status_code == 403 and "driven by dana" in r.json()["detail"]
    assert client.get(f"{API}/orders/SO-1").json()["state"] == "in_transit"
    by_dispatch = client.post(f"{API}/orders/SO-1/deliver", json={})
    assert by_dispatch.status_code == 200 and by_dispatch.json()["confirmed_by"] == "admin"


def test_proof_must_be_whole(client: TestClient) -> None:
    r = client.post(f"{API}/orders/SO-1/deliver", json={"lat": 52.5})
    assert r.status_code == 422 and "both lat and lon" in r.json()["detail"]
    typo = client.post(f"{API}/orders/SO-1/deliver", json={"photo": "x"})
    assert typo.status_code == 422 and "photo" in typo.json()["detail"]
    assert client.get(f"{API}/orders/SO-1").json()["state"] == "in_transit"
