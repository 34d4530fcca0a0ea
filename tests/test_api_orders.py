"""Orders through the API: create, find, change with history, cancel, import CSV, oversell."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest_service.api import create_app
from ingest_service.auth import ensure_admin
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode
from orders.codes import sscc_is_valid

SECRET = "test-only-session-key-0123456789abcdef"


def order(number: str, *, customer: str = "C-1", sku: str = "SKU-A", qty: int = 2, **extra):
    return {
        "number": number,
        "customer": {"ref": customer, "name": f"Customer {customer}", "email": "ops@c.example"},
        "lines": [{"sku": sku, "quantity": qty}],
        "destination": {"address": "1 Dock Road", "lat": 52.5, "lon": 13.4},
        **extra,
    }


def make_client(database_url: str, **settings: object) -> TestClient:
    with psycopg.connect(database_url) as conn:
        ensure_admin(conn, username="admin", password="admin-password-long")
        conn.execute(
            "INSERT INTO products (sku, gtin, name, unit_price) VALUES"
            " ('SKU-A', '04012345000016', 'Widget', 2.50), ('SKU-B', NULL, 'Gadget', 10)"
        )
        conn.execute("INSERT INTO stock VALUES ('SKU-A', 'wh1', 10), ('SKU-B', 'wh1', 1)")
        conn.execute("INSERT INTO trips (id, origin_site) VALUES ('T1', 'wh1'), ('T2', 'wh1')")
    app = create_app(
        settings=Settings(secret_key=SECRET, _env_file=None, **settings),  # type: ignore[arg-type]
        database_url=database_url,
        storage_mode=StorageMode("postgresql", "test"),
    )
    client = TestClient(app)
    client.__enter__()
    r = client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": "admin-password-long"}
    )
    client.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return client


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    c = make_client(database_url)
    yield c
    c.__exit__(None, None, None)


def test_an_order_is_created_with_labelled_packages_and_read_back(client: TestClient) -> None:
    r = client.post("/api/v1/orders", json=order("SO-1", packages=3, tagged=True, trip="T1"))
    assert r.status_code == 201, r.text
    ssccs = r.json()["packages"]
    assert len(ssccs) == 3 and all(sscc_is_valid(s) for s in ssccs)
    assert len(set(ssccs)) == 3
    got = client.get("/api/v1/orders/SO-1").json()
    assert got["state"] == "created" and got["trip_id"] == "T1"
    assert [p["sscc"] for p in got["packages"]] == ssccs
    assert all(p["epc"] and p["epc"].startswith("31") for p in got["packages"])
    assert got["lines"] == [{"line_no": 1, "sku": "SKU-A", "quantity": 2, "unit_price": "2.50"}]
    assert got["customer"]["name"] == "Customer C-1"
    history = client.get("/api/v1/orders/SO-1/history").json()
    assert [h["kind"] for h in history] == ["created"] and history[0]["actor"] == "admin"


def test_ssccs_are_never_handed_out_twice(client: TestClient) -> None:
    a = client.post("/api/v1/orders", json=order("SO-1", packages=2, qty=1)).json()["packages"]
    b = client.post("/api/v1/orders", json=order("SO-2", packages=2, qty=1)).json()["packages"]
    assert not set(a) & set(b)


def test_refusals_say_what_to_fix(client: TestClient) -> None:
    assert client.post("/api/v1/orders", json=order("SO-1", qty=1)).status_code == 201
    again = client.post("/api/v1/orders", json=order("SO-1", qty=1))
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    unknown = client.post("/api/v1/orders", json=order("SO-2", sku="NOPE"))
    assert unknown.status_code == 422 and "NOPE" in unknown.json()["detail"]
    trip = client.post("/api/v1/orders", json=order("SO-3", trip="T404"))
    assert trip.status_code == 422 and "T404" in trip.json()["detail"]


def test_an_oversell_warns_and_opens_an_exception_by_default(
    client: TestClient, database_url: str
) -> None:
    r = client.post("/api/v1/orders", json=order("SO-1", sku="SKU-B", qty=3))
    assert r.status_code == 201
    assert r.json()["warnings"] == ["order SO-1 oversells: SKU-B: 3 wanted, 1 available"]
    with psycopg.connect(database_url) as conn:
        kinds = conn.execute("SELECT kind, sku FROM exceptions").fetchall()
    assert kinds == [("oversell", "SKU-B")]
    flagged = client.get("/api/v1/orders/SO-1").json()
    assert (flagged["open_exceptions"], flagged["exception_flags"]) == (1, ["oversell"])
    # Open orders reserve stock: the next order for SKU-A sees what SO-2 already wants.
    client.post("/api/v1/orders", json=order("SO-2", qty=8))
    third = client.post("/api/v1/orders", json=order("SO-3", qty=3)).json()
    assert third["warnings"] == ["order SO-3 oversells: SKU-A: 3 wanted, 2 available"]


def test_an_oversell_is_refused_when_configured(database_url: str) -> None:
    c = make_client(database_url, oversell_policy="refuse")
    try:
        r = c.post("/api/v1/orders", json=order("SO-1", sku="SKU-B", qty=3))
        assert r.status_code == 409 and "1 available" in r.json()["detail"]
        assert c.get("/api/v1/orders/SO-1").status_code == 404
    finally:
        c.__exit__(None, None, None)


def test_find_by_any_field_and_search_with_pages(client: TestClient) -> None:
    for i in range(5):
        client.post("/api/v1/orders", json=order(f"SO-{i}", customer=f"C-{i % 2}", qty=1))
    client.post("/api/v1/orders", json=order("XX-9", customer="ACME", qty=1, priority=7))
    assert [o["number"] for o in client.get("/api/v1/orders?q=xx").json()["items"]] == ["XX-9"]
    by_name = client.get("/api/v1/orders", params={"q": "customer acme"}).json()["items"]
    assert [o["number"] for o in by_name] == ["XX-9"]
    c0 = client.get("/api/v1/orders?customer=C-0").json()["items"]
    assert sorted(o["number"] for o in c0) == ["SO-0", "SO-2", "SO-4"]
    urgent = client.get("/api/v1/orders?priority_at_least=5").json()["items"]
    assert [o["number"] for o in urgent] == ["XX-9"]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/orders", params=params).json()
        seen += [o["number"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(["SO-0", "SO-1", "SO-2", "SO-3", "SO-4", "XX-9"])
    assert len(seen) == 6
    assert client.get("/api/v1/orders?state=created&state=packed").json()["items"]
    assert client.get("/api/v1/orders?state=flying").status_code == 422


def test_changes_need_the_current_version_and_are_recorded(client: TestClient) -> None:
    client.post("/api/v1/orders", json=order("SO-1", qty=1))
    r = client.patch("/api/v1/orders/SO-1", json={"version": 1, "priority": 5, "trip": "T2"})
    assert r.status_code == 200 and r.json()["version"] == 2
    stale = client.patch("/api/v1/orders/SO-1", json={"version": 1, "priority": 1})
    assert stale.status_code == 409 and "reload" in stale.json()["detail"]
    lines = client.patch(
        "/api/v1/orders/SO-1", json={"version": 2, "lines": [{"sku": "SKU-B", "quantity": 1}]}
    )
    assert lines.status_code == 200
    changed = [
        h for h in client.get("/api/v1/orders/SO-1/history").json() if h["kind"] == "changed"
    ]
    assert changed[0]["detail"]["priority"] == {"from": 0, "to": 5}
    assert changed[0]["detail"]["trip_id"] == {"from": None, "to": "T2"}
    assert changed[1]["detail"]["lines"] == {"from": [["SKU-A", 1]], "to": [["SKU-B", 1]]}


def test_cancel_follows_the_lifecycle_table(client: TestClient, database_url: str) -> None:
    client.post("/api/v1/orders", json=order("SO-1", qty=1))
    client.post("/api/v1/orders", json=order("SO-2", qty=1))
    ok = client.post("/api/v1/orders/SO-1/cancel", json={"version": 1, "reason": "customer"})
    assert ok.status_code == 200
    assert client.get("/api/v1/orders/SO-1").json()["state"] == "cancelled"
    again = client.post("/api/v1/orders/SO-1/cancel", json={"version": 2, "reason": "again"})
    assert again.status_code == 409
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE orders SET state = 'in_transit' WHERE number = 'SO-2'")
    gone = client.post("/api/v1/orders/SO-2/cancel", json={"version": 1, "reason": "late"})
    assert gone.status_code == 409 and "goods have left" in gone.json()["detail"]
    last = client.get("/api/v1/orders/SO-1/history").json()[-1]
    assert (last["from_state"], last["to_state"], last["detail"]) == (
        "created",
        "cancelled",
        {"reason": "customer"},
    )


CSV = (
    "order_number,customer_ref,customer_name,customer_email,sku,quantity,address\n"
    "SO-1,C-1,Acme,a@a.example,SKU-A,1,1 Dock Road\n"
    "SO-1,C-1,Acme,a@a.example,SKU-B,1,1 Dock Road\n"
    "SO-2,C-2,Bolt,b@b.example,SKU-A,zero,2 High St\n"
    "SO-3,C-3,Cato,c@c.example,NOPE,1,3 Low St\n"
    "SO-4,C-4,Dora,d@d.example,SKU-A,1,4 Mid St\n"
)


def test_csv_import_all_or_nothing_stores_nothing_when_a_row_is_bad(client: TestClient) -> None:
    r = client.post(
        "/api/v1/orders/import", content=CSV, headers={"content-type": "text/csv"}
    ).json()
    assert r["stored"] is False and r["created"] == []
    assert [(p["line"], p["order_number"]) for p in r["refused"]] == [(4, "SO-2")]
    assert client.get("/api/v1/orders").json()["items"] == []


def test_csv_import_good_only_stores_the_good_orders_and_reports_the_rest(
    client: TestClient,
) -> None:
    r = client.post(
        "/api/v1/orders/import?mode=good_only", content=CSV, headers={"content-type": "text/csv"}
    ).json()
    assert sorted(r["created"]) == ["SO-1", "SO-4"]
    refused = {p["order_number"]: p for p in r["refused"]}
    assert refused["SO-2"]["line"] == 4 and "quantity" in refused["SO-2"]["reason"]
    assert refused["SO-3"]["line"] == 5 and "NOPE" in refused["SO-3"]["reason"]
    assert len(client.get("/api/v1/orders/SO-1").json()["lines"]) == 2
