"""Order exports: the CSV re-imports as the same orders, the XLSX holds the same rows, and the
list's filters apply."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from orders.csv_import import orders_csv_header, parse_orders_csv
from orders.models import OrderIn
from tests.test_api_orders import make_client, order

HEADER = [*orders_csv_header(), "state", "created_at"]


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    c = make_client(database_url)
    yield c
    c.__exit__(None, None, None)


def _orders() -> list[dict]:
    """Orders using every import column, with prices given so they come back unchanged."""
    full = order(
        "SO-1",
        customer="C-1",
        type="transfer",
        priority=7,
        notes='fragile, "this side up"',
        packages=2,
        tagged=True,
        trip="T1",
        window_start="2030-05-01T08:00:00+02:00",
        window_end="2030-05-01T12:00:00+02:00",
        lines=[
            {"sku": "SKU-A", "quantity": 2, "unit_price": "2.50"},
            {"sku": "SKU-B", "quantity": 1, "unit_price": "9.99"},
        ],
        destination={"address": "1 Dock Road", "lat": 52.5, "lon": 13.4, "radius_m": 150},
    )
    full["customer"] |= {"phone": "+49 30 123456", "notify": ["email", "sms"]}
    plain = order("SO-2", customer="C-2", lines=[{"sku": "SKU-A", "quantity": 1,
                                                  "unit_price": "2.50"}])  # fmt: skip
    plain["customer"]["name"] = '=HYPERLINK("https://evil.example")'
    return [full, plain]


def _reimport(csv_text: str) -> list[OrderIn]:
    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[0] == HEADER
    stripped = io.StringIO()
    csv.writer(stripped).writerows(row[:-2] for row in rows)  # without state and created_at
    result = parse_orders_csv(stripped.getvalue())
    assert result.errors == []
    return result.orders


def test_the_csv_reimports_as_the_same_orders(client: TestClient) -> None:
    sent = _orders()
    for body in sent:
        assert client.post("/api/v1/orders", json=body).status_code == 201
    r = client.get("/api/v1/orders/export?format=csv&order=oldest")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith('attachment; filename="orders-')
    assert r.headers["content-disposition"].endswith('.csv"')
    assert _reimport(r.text) == [OrderIn.model_validate(body) for body in sent]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["order_number"], row["sku"], row["state"]) for row in rows] == [
        ("SO-1", "SKU-A", "created"),
        ("SO-1", "SKU-B", "created"),
        ("SO-2", "SKU-A", "created"),
    ]
    created = client.get("/api/v1/orders/SO-1").json()["created_at"]
    assert datetime.fromisoformat(rows[0]["created_at"]) == datetime.fromisoformat(created)


def test_the_xlsx_holds_the_same_rows(client: TestClient) -> None:
    for body in _orders():
        client.post("/api/v1/orders", json=body)
    as_csv = client.get("/api/v1/orders/export?format=csv").text
    r = client.get("/api/v1/orders/export?format=xlsx")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert r.headers["content-disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(r.content), read_only=True)["orders"]
    cells = [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]
    as_rows = list(csv.reader(io.StringIO(as_csv)))
    assert len(cells) == len(as_rows) == 4
    for got, want in zip(cells, as_rows, strict=True):
        for value, text in zip(got, want, strict=True):
            if isinstance(value, bool):
                assert str(value).lower() == text
            elif isinstance(value, int | float):  # numbers are numbers in a spreadsheet
                assert value == float(text)
            else:
                assert value == text
    assert {type(cells[1][HEADER.index(c)]) for c in ("quantity", "unit_price", "lat")} <= {
        int,
        float,
    }
    # A customer name that looks like a formula stays text: a spreadsheet does not run it.
    so2 = next(row for row in sheet.iter_rows(min_row=2) if row[0].value == "SO-2")
    name = so2[HEADER.index("customer_name")]
    assert (name.value, name.data_type) == ('=HYPERLINK("https://evil.example")', "s")


def test_the_list_filters_apply_and_every_page_is_exported(
    client: TestClient, database_url: str
) -> None:
    for i in range(5):
        client.post("/api/v1/orders", json=order(f"SO-{i}", customer=f"C-{i % 2}", qty=1))
    client.post("/api/v1/orders", json=order("XX-9", customer="ACME", sku="SKU-B", qty=1))
    client.post("/api/v1/orders/SO-3/cancel", json={"version": 1, "reason": "customer"})

    def numbers(**params: object) -> list[str]:
        r = client.get("/api/v1/orders/export", params=params)
        assert r.status_code == 200, r.text
        return [row["order_number"] for row in csv.DictReader(io.StringIO(r.text))]

    assert sorted(numbers(customer="C-0")) == ["SO-0", "SO-2", "SO-4"]
    assert numbers(sku="SKU-B") == ["XX-9"]
    assert numbers(q="xx") == ["XX-9"]
    assert numbers(state="cancelled") == ["SO-3"]
    assert numbers(order="oldest") == ["SO-0", "SO-1", "SO-2", "SO-3", "SO-4", "XX-9"]
    assert numbers(state="delivered") == []
    # More orders than one page of the list: the export still holds them all.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO orders (number, customer_id, dest_address, created_by)"
            " SELECT 'BULK-' || n, (SELECT id FROM customers LIMIT 1), 'x', 'test'"
            " FROM generate_series(1, 1100) n"
        )
        conn.execute(
            "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price)"
            " SELECT id, 1, 'SKU-A', 1, 2.50 FROM orders WHERE number LIKE 'BULK-%'"
        )
    bulk = numbers(q="bulk-")
    assert len(bulk) == 1100 == len(set(bulk))


def test_paging_parameters_are_refused_with_the_reason(client: TestClient) -> None:
    r = client.get("/api/v1/orders/export?limit=10")
    assert r.status_code == 422 and "leave out limit" in r.json()["detail"]
    typo = client.get("/api/v1/orders/export?custmer=C-1")
    assert typo.status_code == 422 and "custmer" in typo.json()["detail"]
    assert client.get("/api/v1/orders/export?format=ods").status_code == 422
