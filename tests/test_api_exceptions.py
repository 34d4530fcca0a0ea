"""Exceptions through the API: raise by hand, acknowledge, resolve, notes, owner, find."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.test_api_orders import make_client, order

API = "/api/v1/exceptions"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    c = make_client(database_url)
    c.post("/api/v1/vehicles", json={"id": "truck-1", "name": "Truck 1"})
    for number in ("SO-1", "SO-2"):
        assert c.post("/api/v1/orders", json=order(number, qty=1)).status_code == 201
    yield c
    c.__exit__(None, None, None)


def login(client: TestClient, role: str) -> dict[str, str]:
    name, password = f"user-{role}", f"{role}-password-long"
    r = client.post("/api/v1/users", json={"username": name, "password": password, "role": role})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/auth/login", json={"username": name, "password": password})
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def sscc_of(client: TestClient, number: str) -> str:
    return client.get(f"/api/v1/orders/{number}").json()["packages"][0]["sscc"]


def test_a_dock_worker_raises_damage_by_hand_and_a_viewer_cannot(client: TestClient) -> None:
    dock, viewer = login(client, "dock"), login(client, "viewer")
    sscc = sscc_of(client, "SO-1")
    damage = {"kind": "damage", "summary": "crushed corner", "package": sscc, "trip": "T1"}
    r = client.post(API, json=damage, headers=dock)
    assert r.status_code == 201, r.text
    e = r.json()
    assert (e["kind"], e["status"], e["opened_by"]) == ("damage", "open", "user-dock")
    assert (e["order_number"], e["package_sscc"], e["trip_id"]) == ("SO-1", sscc, "T1")
    assert client.get(f"{API}/{e['id']}", headers=viewer).json()["summary"] == "crushed corner"
    assert client.post(API, json=damage, headers=viewer).status_code == 403
    mismatch = client.post(API, json={**damage, "order": "SO-2"})
    assert mismatch.status_code == 422 and "not of order SO-2" in mismatch.json()["detail"]
    unknown = client.post(API, json={"kind": "delay", "summary": "late", "order": "SO-9"})
    assert unknown.status_code == 422 and "no order SO-9" in unknown.json()["detail"]
    bad_kind = client.post(API, json={"kind": "alien", "summary": "x"})
    assert bad_kind.status_code == 422
    # A dock worker raises; dispatchers handle.
    assert client.post(f"{API}/{e['id']}/acknowledge", headers=dock).status_code == 403


def test_status_moves_follow_the_table_and_leave_a_timeline(client: TestClient) -> None:
    e = client.post(API, json={"kind": "delay", "summary": "traffic", "order": "SO-1"}).json()
    ack = client.post(f"{API}/{e['id']}/acknowledge")
    assert ack.status_code == 200, ack.text
    a = ack.json()
    assert a["status"] == "acknowledged" and a["acknowledged_at"] and a["owner"] == "admin"
    twice = client.post(f"{API}/{e['id']}/acknowledge", json={"note": "again"})
    assert twice.status_code == 409
    assert "acknowledged cannot become acknowledged" in twice.json()["detail"]
    assert client.post(f"{API}/{e['id']}/resolve", json={}).status_code == 422  # note needed
    noted = client.post(f"{API}/{e['id']}/notes", json={"note": "called the driver"})
    assert noted.status_code == 201
    done = client.post(f"{API}/{e['id']}/resolve", json={"note": "arrived 20 min late"}).json()
    assert done["status"] == "resolved" and done["resolved_at"]
    assert [(n["note"], n["status_to"], n["author"]) for n in done["notes"]] == [
        ("acknowledged", "acknowledged", "admin"),
        ("called the driver", None, "admin"),
        ("arrived 20 min late", "resolved", "admin"),
    ]
    final = client.post(f"{API}/{e['id']}/resolve", json={"note": "more"})
    assert final.status_code == 409 and "open a new one" in final.json()["detail"]
    # Straight from open to resolved is allowed; nobody acknowledged it.
    other = client.post(API, json={"kind": "other", "summary": "x"}).json()
    closed = client.post(f"{API}/{other['id']}/resolve", json={"note": "duplicate"}).json()
    assert closed["status"] == "resolved" and closed["acknowledged_at"] is None
    assert client.post(f"{API}/987654/acknowledge").status_code == 404


def test_an_owner_is_an_active_user_and_the_change_is_noted(client: TestClient) -> None:
    login(client, "dispatcher")
    e = client.post(API, json={"kind": "other", "summary": "x"}).json()
    r = client.put(f"{API}/{e['id']}/owner", json={"owner": "user-dispatcher"})
    assert r.status_code == 200 and r.json()["owner"] == "user-dispatcher"
    assert r.json()["notes"][-1]["note"] == "owner: nobody → user-dispatcher"
    ghost = client.put(f"{API}/{e['id']}/owner", json={"owner": "ghost"})
    assert ghost.status_code == 422 and "no active user ghost" in ghost.json()["detail"]
    # Acknowledging keeps an owner already set.
    acked = client.post(f"{API}/{e['id']}/acknowledge").json()
    assert acked["owner"] == "user-dispatcher"
    cleared = client.put(f"{API}/{e['id']}/owner", json={"owner": None}).json()
    assert cleared["owner"] is None


def test_find_by_filters_in_keyset_pages(client: TestClient, database_url: str) -> None:
    raised = [
        {"kind": "delay", "summary": "a", "order": "SO-1", "trip": "T1"},
        {"kind": "damage", "summary": "b", "order": "SO-2", "vehicle": "truck-1"},
        {"kind": "delay", "summary": "c", "trip": "T2"},
        {"kind": "other", "summary": "d"},
    ]
    ids = [client.post(API, json=body).json()["id"] for body in raised]
    with psycopg.connect(database_url) as conn:  # spread them out in time, oldest first
        for n, i in enumerate(ids):
            conn.execute(
                "UPDATE exceptions SET opened_at = '2025-01-01T00:00Z'::timestamptz"
                " + make_interval(hours => %s) WHERE id = %s",
                (n, i),
            )
    client.post(f"{API}/{ids[0]}/resolve", json={"note": "ok"})

    def summaries(**params: object) -> list[str]:
        r = client.get(API, params=params)
        assert r.status_code == 200, r.text
        return [e["summary"] for e in r.json()["items"]]

    assert summaries(kind="delay") == ["c", "a"]
    assert summaries(status=["open", "acknowledged"]) == ["d", "c", "b"]
    assert summaries(order="SO-2") == ["b"]
    assert summaries(trip="T1") == ["a"]
    assert summaries(vehicle="truck-1") == ["b"]
    assert summaries(since="2025-01-01T02:00:00Z") == ["d", "c"]
    seen, cursor = [], None
    while True:
        page = client.get(API, params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        seen += [e["summary"] for e in page.json()["items"]]
        if (cursor := page.json()["next_cursor"]) is None:
            break
    assert seen == ["d", "c", "b", "a"]
    assert client.get(API, params={"cursor": "forged"}).status_code == 422
    assert client.get(API, params={"knd": "delay"}).status_code == 422
