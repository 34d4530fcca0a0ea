"""Products and stock through the API: the catalogue, receipts and adjustments, low stock."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.test_api_orders import make_client

API = "/api/v1/products"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """Admin; SKU-A (GTIN 04012345000016, 10 at wh1) and SKU-B (1 at wh1) from make_client."""
    c = make_client(database_url)
    yield c
    c.__exit__(None, None, None)


def test_products_are_added_found_and_changed(client: TestClient) -> None:
    r = client.post(API, json={"sku": "SKU-C", "gtin": "4012345000023", "name": "Lamp",
                               "unit_price": "29.50", "low_stock_threshold": 3})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["gtin"] == "04012345000023"  # kept as a GTIN-14
    bad = client.post(API, json={"sku": "SKU-D", "gtin": "4012345000024", "name": "Bad"})
    assert bad.status_code == 422 and "check digit" in bad.text
    again = client.post(API, json={"sku": "SKU-C", "name": "Lamp"})
    assert again.status_code == 409
    found = client.get(API, params={"q": "lamp"}).json()["items"]
    assert [p["sku"] for p in found] == ["SKU-C"]
    assert client.get(API, params={"q": "0401234500001"}).json()["items"][0]["sku"] == "SKU-A"
    changed = client.patch(f"{API}/SKU-C", json={"unit_price": "31.00", "active": False})
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert client.patch(f"{API}/NOPE", json={"name": "x"}).status_code == 404


def move(client: TestClient, sku: str, reason: str, location: str, delta: int):
    body = {"reason": reason, "location": location, "delta": delta}
    return client.post(f"{API}/{sku}/movements", json=body)


def test_receipts_and_adjustments_are_movements_with_who_and_why(client: TestClient) -> None:
    r = move(client, "SKU-A", "receipt", "wh2", 5)
    assert r.status_code == 201, r.text
    assert (r.json()["quantity_at_location"], r.json()["on_hand"]) == (5, 15)
    negative_receipt = move(client, "SKU-A", "receipt", "wh1", -1)
    assert negative_receipt.status_code == 422 and "adjustment" in negative_receipt.text
    too_many = move(client, "SKU-A", "adjustment", "wh1", -11)
    assert too_many.status_code == 409 and "Count the shelf" in too_many.json()["detail"]
    stock = client.get(f"{API}/SKU-A/stock").json()
    assert stock["on_hand"] == 15
    assert {s["location"]: s["quantity"] for s in stock["locations"]} == {"wh1": 10, "wh2": 5}
    moves = client.get(f"{API}/SKU-A/movements").json()
    assert [(m["reason"], m["delta"], m["actor"]) for m in moves] == [("receipt", 5, "admin")]


def test_going_below_the_threshold_opens_one_low_stock_exception_a_day_with_a_hint(
    client: TestClient, database_url: str
) -> None:
    client.patch(f"{API}/SKU-A", json={"low_stock_threshold": 4, "lead_time_days": 3})
    with psycopg.connect(database_url) as conn:  # what picks took this week: 14 units
        conn.execute(
            "INSERT INTO stock_movements (sku, location, delta, reason, actor)"
            " VALUES ('SKU-A', 'wh1', -14, 'pick', 'test')"
        )
    first = move(client, "SKU-A", "adjustment", "wh1", -7).json()
    assert first["low_stock_opened"] is True
    second = move(client, "SKU-A", "adjustment", "wh1", -1).json()
    assert second["low_stock_opened"] is False  # one a day
    (reorder,) = [r for r in client.get(f"{API}/low-stock").json() if r["sku"] == "SKU-A"]
    assert (reorder["on_hand"], reorder["threshold"], reorder["daily_usage"]) == (2, 4, 2.0)
    assert reorder["reorder_qty"] == 2 * 3 + 4 - 2
    with psycopg.connect(database_url) as conn:
        opened = conn.execute(
            "SELECT kind, sku, opened_by FROM exceptions WHERE kind = 'low_stock'"
        ).fetchall()
    assert opened == [("low_stock", "SKU-A", "rule:low_stock")]
