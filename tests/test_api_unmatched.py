"""Unmatched scans through the API: list the open ones, assign to an order, or dismiss."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.test_api_orders import make_client, order

API = "/api/v1/unmatched"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    c = make_client(database_url)
    assert c.post("/api/v1/orders", json=order("SO-1", qty=1)).status_code == 201
    yield c
    c.__exit__(None, None, None)


def unmatched(database_url: str, *, site: str = "wh1", gateway: str = "gw-1", hour: int = 0):
    """A scan the matcher could not place, as it stores one; its event id."""
    event_id = uuid.uuid4()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO unmatched_scans (event_id, seen_at, site, gateway, device, code,"
            " code_kind, door, reason) VALUES (%s, '2025-01-01T00:00Z'::timestamptz"
            " + make_interval(hours => %s), %s, %s, 'scanner-1', %s, 'barcode', 'door-1',"
            " 'no package, order or product has this code')",
            (event_id, hour, site, gateway, f"CODE-{hour}"),
        )
    return event_id


def codes(client: TestClient, **params: object) -> list[str]:
    r = client.get(API, params=params)
    assert r.status_code == 200, r.text
    return [s["code"] for s in r.json()["items"]]


def test_open_scans_are_listed_by_site_gateway_and_time_in_pages(
    client: TestClient, database_url: str
) -> None:
    unmatched(database_url, hour=0)
    unmatched(database_url, hour=1, gateway="gw-2")
    unmatched(database_url, hour=2, site="wh2")
    gone = unmatched(database_url, hour=3)
    client.post(f"{API}/{gone}/dismiss", json={"note": "test label"})
    assert codes(client) == ["CODE-2", "CODE-1", "CODE-0"]
    assert codes(client, site="wh1") == ["CODE-1", "CODE-0"]
    assert codes(client, gateway="gw-2") == ["CODE-1"]
    assert codes(client, since="2025-01-01T01:00:00Z") == ["CODE-2", "CODE-1"]
    assert codes(client, status="dismissed") == ["CODE-3"]
    first = client.get(API, params={"limit": 2}).json()
    rest = client.get(API, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [s["code"] for s in first["items"] + rest["items"]] == ["CODE-2", "CODE-1", "CODE-0"]
    assert rest["next_cursor"] is None
    assert client.get(API, params={"gatway": "gw-1"}).status_code == 422


def test_assigning_a_scan_resolves_it_and_notes_it_on_the_order(
    client: TestClient, database_url: str
) -> None:
    scan = unmatched(database_url)
    r = client.post(f"{API}/{scan}/assign", json={"order": "SO-1", "note": "torn label"})
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["status"], s["order_number"], s["resolved_by"]) == ("assigned", "SO-1", "admin")
    assert s["resolved_at"] and s["note"] == "torn label"
    assert codes(client) == [] and codes(client, status="assigned") == ["CODE-0"]
    note = client.get("/api/v1/orders/SO-1/history").json()[-1]
    assert (note["kind"], note["actor"], note["evidence_event_id"]) == ("note", "admin", str(scan))
    assert note["read_point"] == {"site": "wh1", "door": "door-1", "station": None}
    assert note["detail"]["unmatched_scan"]["code"] == "CODE-0"
    assert note["detail"]["note"] == "torn label"
    again = client.post(f"{API}/{scan}/assign", json={"order": "SO-1"})
    assert again.status_code == 409
    assert "already assigned to order SO-1 by admin" in again.json()["detail"]
    assert client.post(f"{API}/{scan}/dismiss", json={"note": "x"}).status_code == 409


def test_dismissing_needs_a_note_and_refusals_change_nothing(
    client: TestClient, database_url: str
) -> None:
    scan = unmatched(database_url)
    assert client.post(f"{API}/{scan}/dismiss", json={}).status_code == 422
    wrong = client.post(f"{API}/{scan}/assign", json={"order": "SO-9"})
    assert wrong.status_code == 422 and "no order SO-9" in wrong.json()["detail"]
    assert codes(client) == ["CODE-0"]  # still open
    r = client.post(f"{API}/{scan}/dismiss", json={"note": "a test scan at setup"})
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["order_number"]) == ("dismissed", None)
    assert codes(client) == []
    history = client.get("/api/v1/orders/SO-1/history").json()
    assert [h["kind"] for h in history] == ["created"]
    assert client.post(f"{API}/{uuid.uuid4()}/dismiss", json={"note": "x"}).status_code == 404
