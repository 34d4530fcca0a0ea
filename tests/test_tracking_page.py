"""The customer's tracking page /t/{token} on real rows: the status allowlist, the vehicle only
while the order's stop is next, one 404 for unknown, revoked and expired links, rate limits
against guessing, the language, the headers, and who may make and revoke links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from notifications.tracking_view import (
    STATUS_KEYS,
    OrderRow,
    StopRow,
    choose_language,
    link_expires_at,
    timeline,
    vehicle_shown,
)
from tests.test_api_orders import make_client

LINK = "/api/v1/orders/{}/tracking-link"
# What must never reach a customer's page: the customer, the address, the driver, the
# vehicle's name and plate, the other customer's order.
PRIVATE = ("Zed Privacy", "zed@private.example", "+15550009999", "42 Secret Lane", "dana-driver",
           "Plate-XY-123", "Big Truck", "SO-A")  # fmt: skip
NO_LINK = "A" * 32  # well formed, never issued


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def scene(database_url: str, now: datetime) -> None:
    """Trip T9 (truck-9, departed): stop 1 delivers SO-A, stop 2 SO-B, both in transit; SO-C
    delivered 13 days ago, SO-D 15 days ago, SO-E cancelled yesterday."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO vehicles (id, name, plate) VALUES ('truck-9', 'Big Truck', 'Plate-XY-123')"
        )
        conn.execute(
            "INSERT INTO vehicle_state (vehicle_id, last_fix_at, lat, lon, heading_deg)"
            " VALUES ('truck-9', %s, 52.512345678, 13.456789012, 87.6)",
            (now - timedelta(seconds=10),),
        )
        fence = conn.execute(
            "INSERT INTO geofences (name, kind, feature, created_by) VALUES ('f', 'customer_site',"
            ' \'{"type": "Feature", "properties": {"radius_m": 100}, "geometry":'
            ' {"type": "Point", "coordinates": [13.5, 52.5]}}\', \'test\') RETURNING id'
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO trips (id, vehicle_id, origin_site, state, driver, departed_at)"
            " VALUES ('T9', 'truck-9', 'wh1', 'departed', 'dana-driver', %s)",
            (now - timedelta(minutes=30),),
        )
        conn.execute(
            "INSERT INTO trip_stops (trip_id, seq, fence_id, eta_earliest, eta_latest) VALUES"
            " ('T9', 1, %s, %s, %s), ('T9', 2, %s, %s, %s)",
            (fence, now + timedelta(minutes=5), now + timedelta(minutes=10),
             fence, now + timedelta(minutes=40), now + timedelta(minutes=55)),
        )  # fmt: skip
        customer = conn.execute(
            "INSERT INTO customers (ref, name, email, phone) VALUES"
            " ('C-9', 'Zed Privacy', 'zed@private.example', '+15550009999') RETURNING id"
        ).fetchone()[0]
        orders = (("SO-A", "in_transit", 1), ("SO-B", "in_transit", 2), ("SO-C", "delivered", None),
                  ("SO-D", "delivered", None), ("SO-E", "cancelled", None))  # fmt: skip
        for number, state, stop in orders:
            order_id = conn.execute(
                "INSERT INTO orders (number, customer_id, state, dest_address, trip_id, stop_seq,"
                " window_start, window_end, created_by, created_at) VALUES"
                " (%s, %s, %s, '42 Secret Lane', %s, %s, %s, %s, 'test', %s) RETURNING id",
                (number, customer, state, "T9" if stop else None, stop, now + timedelta(hours=1),
                 now + timedelta(hours=3), now - timedelta(days=20)),
            ).fetchone()[0]  # fmt: skip
            conn.execute(
                "INSERT INTO order_events (order_id, at, kind, to_state, actor)"
                " VALUES (%s, %s, 'created', 'created', 'test')",
                (order_id, now - timedelta(days=20)),
            )
            closed = {"SO-C": 13, "SO-D": 15, "SO-E": 1}.get(number)
            if stop:
                conn.execute(
                    "INSERT INTO order_events (order_id, at, kind, from_state, to_state, actor)"
                    " VALUES (%s, %s, 'state', 'loaded', 'in_transit', 'test')",
                    (order_id, now - timedelta(minutes=30)),
                )
            elif state == "delivered":
                conn.execute(
                    "INSERT INTO deliveries (order_id, delivered_at, confirmed_by)"
                    " VALUES (%s, %s, 'dana-driver')",
                    (order_id, now - timedelta(days=closed)),
                )
            else:
                conn.execute(
                    "INSERT INTO order_events (order_id, at, kind, from_state, to_state, actor)"
                    " VALUES (%s, %s, 'state', 'created', 'cancelled', 'test')",
                    (order_id, now - timedelta(days=closed)),
                )


@pytest.fixture
def client(
    database_url: str, now: datetime, request: pytest.FixtureRequest
) -> Iterator[TestClient]:
    scene(database_url, now)
    c = make_client(database_url, map_tile_url="", **getattr(request, "param", {}))
    yield c
    c.__exit__(None, None, None)


def link(client: TestClient, number: str) -> str:
    r = client.post(LINK.format(number))
    assert r.status_code == 200, r.text
    assert r.json()["url"] == f"http://127.0.0.1:8080/t/{r.json()['token']}"
    return r.json()["token"]


def status(client: TestClient, token: str) -> dict:
    r = client.get(f"/t/{token}/status")
    assert r.status_code == 200, r.text
    return r.json()


def test_status_is_exactly_the_allowlist_and_hides_the_customer(client: TestClient) -> None:
    token = link(client, "SO-A")
    body = status(client, token)
    assert set(body) == STATUS_KEYS
    assert body["order_number"] == "SO-A" and body["state"] == "dispatched"
    assert [e["step"] for e in body["timeline"]] == [
        "confirmed", "dispatched", "arriving", "arrived", "delivered"]  # fmt: skip
    assert all(set(e) == {"step", "at"} for e in body["timeline"])
    assert [e["at"] is not None for e in body["timeline"]] == [True, True, False, False, False]
    assert set(body["window"]) == {"start", "end"} and set(body["eta"]) == {"earliest", "latest"}
    assert set(body["vehicle"]) == {"lat", "lon", "heading", "at"}
    assert body["vehicle"]["lat"] == 52.51235 and body["vehicle"]["heading"] == 88
    assert body["delayed"] is False and body["expires_at"] is None
    page = client.get(f"/t/{token}")
    assert page.status_code == 200
    for text in (page.text, client.get(f"/t/{token}/status").text):
        for secret in PRIVATE[:-1]:
            assert secret not in text, secret
    assert "SO-A" in page.text


def test_vehicle_shows_only_while_the_orders_stop_is_next(
    client: TestClient, database_url: str
) -> None:
    second = link(client, "SO-B")
    assert status(client, second)["vehicle"] is None  # stop 1 (another customer) comes first
    assert status(client, second)["eta"] is not None
    page = client.get(f"/t/{second}").text
    assert "SO-A" not in page and "52.51" not in page
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE trip_stops SET state = 'arrived' WHERE trip_id = 'T9' AND seq = 1")
    assert status(client, second)["vehicle"]["lon"] == 13.45679
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE trip_stops SET state = 'done' WHERE seq = 1")
        conn.execute("UPDATE orders SET state = 'arriving' WHERE number = 'SO-B'")
    assert status(client, second)["vehicle"] is not None
    with psycopg.connect(database_url) as conn:  # its stop reached: the route beyond is not ours
        conn.execute("UPDATE trip_stops SET state = 'arrived' WHERE seq = 2")
        conn.execute("UPDATE orders SET state = 'arrived' WHERE number = 'SO-B'")
    body = status(client, second)
    assert body["vehicle"] is None and body["eta"] is None and body["state"] == "arrived"


def test_unknown_revoked_and_expired_links_are_one_and_the_same_404(client: TestClient) -> None:
    live, expired, revoked = link(client, "SO-C"), link(client, "SO-D"), link(client, "SO-B")
    assert status(client, live)["expires_at"] is not None  # 13 of 14 days: still works
    assert status(client, live)["state"] == "delivered"
    assert client.delete(LINK.format("SO-B")).status_code == 204
    answers = []
    for token in (NO_LINK, expired, revoked):
        page, data = client.get(f"/t/{token}"), client.get(f"/t/{token}/status")
        assert page.status_code == data.status_code == 404
        answers.append((page.text, data.text, page.headers["content-type"]))
    assert answers[0] == answers[1] == answers[2]
    assert "SO-" not in answers[0][0] + answers[0][1]


def test_a_cancelled_order_shows_cancelled_and_expires(client: TestClient) -> None:
    body = status(client, link(client, "SO-E"))
    assert [e["step"] for e in body["timeline"]] == ["confirmed", "cancelled"]
    assert body["state"] == "cancelled" and body["expires_at"] and body["window"]


def test_an_open_delay_shows_a_notice(client: TestClient, database_url: str) -> None:
    token = link(client, "SO-B")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO exceptions (kind, summary, order_id, opened_by) SELECT 'delay',"
            " 'driver dana-driver stuck', id, 'test' FROM orders WHERE number = 'SO-B'"
        )
    assert status(client, token)["delayed"] is True
    page = client.get(f"/t/{token}").text
    assert re.search(r'<p id="delay"[^>]*role="status">', page)  # not hidden
    assert "stuck" not in page


@pytest.mark.parametrize("client", [{"tracking_misses_per_min": 3}], indirect=True)
def test_guessing_tokens_is_refused_even_with_a_good_one(client: TestClient) -> None:
    token = link(client, "SO-A")
    for n in range(3):
        assert client.get(f"/t/{NO_LINK[:-2]}{n:02d}/status").status_code == 404
    for path in (f"/t/{token}", f"/t/{token}/status"):
        r = client.get(path)
        assert r.status_code == 429, path
        assert 1 <= int(r.headers["retry-after"]) <= 60


@pytest.mark.parametrize("client", [{"tracking_rate_per_min": 4}], indirect=True)
def test_requests_per_client_are_limited(client: TestClient) -> None:
    token = link(client, "SO-A")
    assert [client.get(f"/t/{token}/status").status_code for _ in range(5)] == [200] * 4 + [429]
    assert client.get(f"/t/{token}").headers["retry-after"]


def test_language_follows_accept_language(client: TestClient) -> None:
    token = link(client, "SO-A")
    zh = client.get(f"/t/{token}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert '<html lang="zh-CN">' in zh.text and "运输中" in zh.text
    en = client.get(f"/t/{token}", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in en.text and "On its way" in en.text and "运输中" not in en.text
    missing = client.get(f"/t/{NO_LINK}", headers={"Accept-Language": "zh-TW"})
    assert '<html lang="zh-CN">' in missing.text and "链接无效" in missing.text


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("zh-CN,zh;q=0.9", "zh-CN"),
        ("en;q=0.5, zh-TW;q=0.8", "zh-CN"),
        ("zh;q=0.1, en", "en"),
        ("fr, de;q=0.9", "en"),
        ("zh;q=0", "en"),
        ("", "en"),
        (None, "en"),
        ("*;q=0.5, zh", "zh-CN"),
        ("zh-Hant;q=abc, en-GB;q=0.3", "en"),
    ],
)
def test_choose_language(header: str | None, lang: str) -> None:
    assert choose_language(header) == lang


def test_page_headers_forbid_inline_script_framing_referrers_and_caching(
    client: TestClient,
) -> None:
    token = link(client, "SO-A")
    for path in (f"/t/{token}", f"/t/{token}/status", f"/t/{NO_LINK}", "/t/assets/track.js"):
        h = client.get(path).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer" and h["x-robots-tag"].startswith("noindex")
        assert h["cache-control"] in ("no-store", "no-cache"), path
    page = client.get(f"/t/{token}").text
    assert not re.search(r"<script(?![^>]*\ssrc=)", page), "inline script"
    assert 'name="viewport"' in page and "/vendor/leaflet/leaflet.js" in page
    assert client.get("/t/assets/track.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/t/assets/__init__.py").status_code == 404
    assert client.get("/t/assets/..%2F__init__.py").status_code == 404


def test_links_are_made_and_revoked_by_staff_only(client: TestClient) -> None:
    assert client.post(LINK.format("SO-A"), headers={"Authorization": ""}).status_code == 401
    r = client.post("/api/v1/users", json={"username": "vera", "password": "viewer-password-1",
                                           "role": "viewer"})  # fmt: skip
    assert r.status_code == 201, r.text
    login = client.post("/api/v1/auth/login", json={"username": "vera",
                                                    "password": "viewer-password-1"})  # fmt: skip
    viewer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert client.post(LINK.format("SO-A"), headers=viewer).status_code == 403
    assert client.delete(LINK.format("SO-A"), headers=viewer).status_code == 403
    first = link(client, "SO-A")
    assert link(client, "SO-A") == first and len(first) >= 22
    assert client.delete(LINK.format("SO-A")).status_code == 204
    assert client.delete(LINK.format("SO-A")).status_code == 404
    assert client.get(f"/t/{first}/status").status_code == 404
    assert link(client, "SO-A") != first
    assert client.post(LINK.format("SO-NOPE")).status_code == 404


# ---- the pure view, without a server ------------------------------------------------------

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_step_ahead_of_the_state_is_not_shown_as_reached() -> None:
    order = OrderRow("SO-1", "in_transit", T0)
    steps = timeline(order, {"created": T0, "in_transit": T0, "arrived": T0})
    assert [s["at"] for s in steps] == ["2026-03-01T12:00:00Z"] * 2 + [None] * 3


def test_links_expire_days_after_the_order_closed() -> None:
    assert link_expires_at(OrderRow("SO-1", "arrived", T0), 14) is None
    closed = OrderRow("SO-1", "delivered", T0, closed_at=T0 + timedelta(days=1))
    assert link_expires_at(closed, 14) == T0 + timedelta(days=15)


@pytest.mark.parametrize(
    ("state", "trip", "next_seq", "shown"),
    [
        ("in_transit", "departed", 2, True),
        ("arriving", "departed", 2, True),
        ("in_transit", "departed", 1, False),
        ("in_transit", "departed", None, False),
        ("loaded", "departed", 2, False),
        ("arrived", "departed", 2, False),
        ("in_transit", "completed", 2, False),
    ],
)
def test_vehicle_shown(state: str, trip: str, next_seq: int | None, shown: bool) -> None:
    order = OrderRow("SO-1", state, T0)
    assert vehicle_shown(order, StopRow(trip, 2, next_seq)) is shown
    assert vehicle_shown(order, None) is False
