"""Every route either says which roles may call it or is on the short public list; both hold.

Walks the app's routes and calls each one as nobody, as a stranger with a bad token, and as
a user of every role, so a route added without a guard, or with the wrong one, fails here.
WebSocket routes ("WS") are opened for real and sent the token as their first message.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter

from ingest_service.api import create_app
from ingest_service.api.app import _check_every_route_is_guarded
from ingest_service.auth import PUBLIC_ROUTES, AuthLimits, Role, ensure_admin, route_table
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode

SECRET = "test-only-session-key-0123456789abcdef"
MODE = StorageMode("postgresql", "16.4", None, "timescaledb extension not available")
A, D, K, R, S, V = Role.ADMIN, Role.DISPATCHER, Role.DOCK, Role.DRIVER, Role.SUPPLIER, Role.VIEWER

# The access policy, written out once more by hand: changing a route's roles means changing
# this table too, on purpose. Admin may call everything and is implied.
EXPECTED: dict[tuple[str, str], frozenset[Role] | None] = {
    ("POST", "/api/v1/auth/login"): None,
    ("GET", "/healthz"): None,
    ("GET", "/docs"): None,
    ("GET", "/docs/oauth2-redirect"): None,
    ("GET", "/openapi.json"): None,
    # The customer's tracking page: the token is the credential (docs/notifications.md).
    ("GET", "/t/{token}"): None,
    ("GET", "/t/{token}/status"): None,
    ("GET", "/t/assets/{name}"): None,
    ("GET", "/api/v1/auth/me"): frozenset(Role),
    ("GET", "/api/v1/users"): frozenset({A}),
    ("POST", "/api/v1/users"): frozenset({A}),
    ("PATCH", "/api/v1/users/{user_id}"): frozenset({A}),
    ("POST", "/api/v1/tokens"): frozenset({A}),
    ("GET", "/api/v1/tokens"): frozenset({A}),
    ("DELETE", "/api/v1/tokens/{token_id}"): frozenset({A}),
    ("GET", "/api/v1/positions"): frozenset({D, V}),
    ("GET", "/api/v1/positions/latest"): frozenset({D, V, R}),
    ("GET", "/api/v1/scans"): frozenset({D, K, V}),
    ("GET", "/api/v1/devices/status"): frozenset({D, V}),
    ("GET", "/api/v1/quarantine"): frozenset({D}),
    ("POST", "/api/v1/quarantine/{message_id}/resolve"): frozenset({D}),
    ("GET", "/metrics"): frozenset({V}),
    ("GET", "/api/v1/orders"): frozenset({D, K, V}),
    ("GET", "/api/v1/products"): frozenset({D, K, V}),
    ("POST", "/api/v1/products"): frozenset({D}),
    ("GET", "/api/v1/products/low-stock"): frozenset({D, K, V}),
    ("PATCH", "/api/v1/products/{sku}"): frozenset({D}),
    ("GET", "/api/v1/products/{sku}/stock"): frozenset({D, K, V}),
    ("POST", "/api/v1/products/{sku}/movements"): frozenset({D}),
    ("GET", "/api/v1/products/{sku}/movements"): frozenset({D, K, V}),
    ("POST", "/api/v1/orders"): frozenset({D}),
    ("POST", "/api/v1/orders/import"): frozenset({D}),
    ("GET", "/api/v1/orders/{number}"): frozenset({D, K, V}),
    ("PATCH", "/api/v1/orders/{number}"): frozenset({D}),
    ("POST", "/api/v1/orders/{number}/cancel"): frozenset({D}),
    ("GET", "/api/v1/orders/{number}/history"): frozenset({D, K, V}),
    ("GET", "/api/v1/orders/export"): frozenset({D, V}),
    ("GET", "/api/v1/packages/{sscc}/label"): frozenset({D, K}),
    ("GET", "/api/v1/vehicles"): frozenset({D, K, V}),
    ("POST", "/api/v1/vehicles"): frozenset({D}),
    ("GET", "/api/v1/vehicles/{vehicle_id}"): frozenset({D, K, V}),
    ("PATCH", "/api/v1/vehicles/{vehicle_id}"): frozenset({D}),
    ("POST", "/api/v1/vehicles/{vehicle_id}/deactivate"): frozenset({D}),
    ("GET", "/api/v1/docks"): frozenset({D, K, V}),
    ("GET", "/api/v1/docks/{site}/{door}"): frozenset({D, K, V}),
    ("PUT", "/api/v1/docks/{site}/{door}"): frozenset({D}),
    ("GET", "/api/v1/trips"): frozenset({D, K, V}),
    ("POST", "/api/v1/trips"): frozenset({D}),
    ("GET", "/api/v1/trips/{trip_id}"): frozenset({D, K, V}),
    ("POST", "/api/v1/trips/{trip_id}/orders"): frozenset({D}),
    ("POST", "/api/v1/trips/{trip_id}/depart"): frozenset({D}),
    ("GET", "/api/v1/exceptions"): frozenset({D, K, V}),
    ("POST", "/api/v1/exceptions"): frozenset({D, K}),
    ("GET", "/api/v1/exceptions/{exception_id}"): frozenset({D, K, V}),
    ("POST", "/api/v1/exceptions/{exception_id}/acknowledge"): frozenset({D}),
    ("POST", "/api/v1/exceptions/{exception_id}/resolve"): frozenset({D}),
    ("POST", "/api/v1/exceptions/{exception_id}/notes"): frozenset({D}),
    ("PUT", "/api/v1/exceptions/{exception_id}/owner"): frozenset({D}),
    ("GET", "/api/v1/unmatched"): frozenset({D, K, V}),
    ("POST", "/api/v1/unmatched/{event_id}/assign"): frozenset({D}),
    ("POST", "/api/v1/unmatched/{event_id}/dismiss"): frozenset({D}),
    ("GET", "/api/v1/geofences"): frozenset({D, K, V, R}),
    ("POST", "/api/v1/geofences"): frozenset({D}),
    ("GET", "/api/v1/geofences/{fence_id}"): frozenset({D, K, V, R}),
    ("PATCH", "/api/v1/geofences/{fence_id}"): frozenset({D}),
    ("POST", "/api/v1/geofences/{fence_id}/deactivate"): frozenset({D}),
    ("GET", "/api/v1/trackers"): frozenset({D, K, V}),
    ("PUT", "/api/v1/trackers/{site}/{gateway}/{device}"): frozenset({D}),
    ("DELETE", "/api/v1/trackers/{site}/{gateway}/{device}"): frozenset({D}),
    ("PATCH", "/api/v1/trips/{trip_id}"): frozenset({D}),
    ("PUT", "/api/v1/trips/{trip_id}/stops"): frozenset({D}),
    ("POST", "/api/v1/orders/{number}/deliver"): frozenset({D, R}),
    # The live map (docs/live-map.md): GeoJSON for dispatchers and viewers.
    ("GET", "/api/v1/map/vehicles"): frozenset({D, V}),
    ("GET", "/api/v1/map/vehicles/{vehicle_id}"): frozenset({D, V}),
    ("GET", "/api/v1/map/vehicles/{vehicle_id}/trail"): frozenset({D, V}),
    ("GET", "/api/v1/map/trips/{trip_id}"): frozenset({D, V}),
    # The live stream: authenticated by its first message, not a header (see _live_close).
    ("WS", "/api/v1/live"): frozenset({D, K, V}),
    # Notifications (docs/notifications.md): links, preview, preferences, the delivery log.
    ("POST", "/api/v1/orders/{number}/tracking-link"): frozenset({D}),
    ("DELETE", "/api/v1/orders/{number}/tracking-link"): frozenset({D}),
    ("GET", "/api/v1/notifications/preview"): frozenset({A}),
    ("GET", "/api/v1/customers/{ref}/notifications"): frozenset({D}),
    ("PUT", "/api/v1/customers/{ref}/notifications"): frozenset({A}),
    ("POST", "/api/v1/customers/{ref}/webhook-secret"): frozenset({A}),
    ("GET", "/api/v1/orders/{number}/notifications"): frozenset({D}),
    ("GET", "/api/v1/notifications"): frozenset({D}),
    ("POST", "/api/v1/notifications/{notification_id}/retry"): frozenset({A}),
    # Inbound (docs/inbound.md): suppliers, purchase orders and ASNs; a supplier sees its own.
    ("GET", "/api/v1/suppliers"): frozenset({D}),
    ("POST", "/api/v1/suppliers"): frozenset({D}),
    ("PATCH", "/api/v1/suppliers/{ref}"): frozenset({D}),
    ("POST", "/api/v1/suppliers/{ref}/users/{username}"): frozenset({A}),
    ("POST", "/api/v1/purchase-orders"): frozenset({D}),
    ("GET", "/api/v1/purchase-orders"): frozenset({D, S}),
    ("GET", "/api/v1/purchase-orders/{number}"): frozenset({D, S}),
    ("POST", "/api/v1/purchase-orders/{number}/acknowledge"): frozenset({S}),
    ("POST", "/api/v1/purchase-orders/{number}/cancel"): frozenset({D}),
    ("POST", "/api/v1/purchase-orders/{number}/asns"): frozenset({S}),
    ("GET", "/api/v1/asns"): frozenset({D, S}),
    ("GET", "/api/v1/asns/{number}"): frozenset({D, S}),
    ("PATCH", "/api/v1/asns/{number}"): frozenset({S}),
    ("DELETE", "/api/v1/asns/{number}"): frozenset({S}),
    ("POST", "/api/v1/asns/{number}/submit"): frozenset({S}),
    ("POST", "/api/v1/asns/{number}/cancel"): frozenset({S}),
    ("POST", "/api/v1/asns/{number}/milestones"): frozenset({S}),
    ("POST", "/api/v1/asns/{number}/notes"): frozenset({D, S}),
    ("POST", "/api/v1/asns/{number}/attachments"): frozenset({D, S}),
    ("GET", "/api/v1/asns/{number}/attachments/{note_id}"): frozenset({D, S}),
    # Receiving against an ASN at an inbound door.
    ("PUT", "/api/v1/docks/{site}/{door}/asn"): frozenset({D, K}),
    ("GET", "/api/v1/asns/{number}/receiving"): frozenset({D, K}),
    ("POST", "/api/v1/asns/{number}/close"): frozenset({D}),
    ("GET", "/api/v1/receipts/{number}"): frozenset({D}),
    # EPCIS 2.0 export (docs/epcis.md) and analytics (docs/analytics.md).
    ("GET", "/api/v1/epcis/events"): frozenset({D, V}),
    ("GET", "/api/v1/analytics/stages"): frozenset({D, V}),
    ("GET", "/api/v1/analytics/on-time"): frozenset({D, V}),
    ("GET", "/api/v1/analytics/exceptions"): frozenset({D, V}),
    ("GET", "/api/v1/analytics/throughput"): frozenset({D, V}),
    ("GET", "/api/v1/analytics/vehicles"): frozenset({D, V}),
}


def _app(database_url: str, **kwargs: object) -> FastAPI:
    return create_app(
        settings=Settings(secret_key=SECRET, _env_file=None),
        database_url=database_url,
        storage_mode=MODE,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def app(database_url: str) -> FastAPI:
    registry = CollectorRegistry()
    Counter("tracklane_test_events", "events seen by the test", registry=registry).inc(3)
    probe = {"status": "ok", "broker": "connected", "events_stored": 1234}
    # Every guarded route is called with a bad token from one address: more failures than
    # the per-address login throttle allows, which test_auth.py covers on its own.
    limits = AuthLimits(failures_per_client=10_000)
    return _app(database_url, registry=registry, ingest_health=lambda: probe, auth_limits=limits)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def role_headers(client: TestClient, database_url: str) -> dict[Role, dict[str, str]]:
    """One logged-in user per role."""
    with psycopg.connect(database_url) as conn:
        ensure_admin(conn, username="admin", password="admin-password-long")
    headers: dict[Role, dict[str, str]] = {}
    for role in Role:
        name, password = f"user-{role}", f"{role}-password-long"
        if role is not Role.ADMIN:
            r = client.post(
                "/api/v1/users",
                headers=headers[Role.ADMIN],
                json={"username": name, "password": password, "role": role},
            )
            assert r.status_code == 201, r.text
        else:
            name, password = "admin", "admin-password-long"
        r = client.post("/api/v1/auth/login", json={"username": name, "password": password})
        assert r.status_code == 200, r.text
        headers[role] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return headers


def _url(path: str) -> str:
    # A dummy id that exists nowhere: allowed callers get 404/422, never a side effect.
    return re.sub(r"\{[^}]+\}", "987654", path)


def _guarded(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(key for key, roles in route_table(app).items() if roles is not None)


def _live_close(client: TestClient, path: str, first: dict[str, str]) -> int | None:
    """Open WebSocket `path`, send `first`; the close code, or None if it answered ready."""
    with client.websocket_connect(path) as ws:
        ws.send_json(first)
        try:
            assert ws.receive_json()["type"] == "ready"
        except WebSocketDisconnect as closed:
            return closed.code
    return None


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    """The status a guarded route answers; a WebSocket's close code maps to 401/403/200."""
    if method != "WS":
        return client.request(method, _url(path), headers=headers).status_code
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    first = {"type": "auth", "token": token} if token else {"type": "subscribe"}
    code = _live_close(client, path, first)
    return {None: 200, 4401: 401, 4403: 403}[code]


def test_route_roles_are_the_documented_policy(app: FastAPI) -> None:
    assert route_table(app) == EXPECTED


def test_public_routes_are_exactly_login_health_docs_and_the_tracking_page(app: FastAPI) -> None:
    expected_public = {
        ("POST", "/api/v1/auth/login"),
        ("GET", "/healthz"),
        ("GET", "/docs"),
        ("GET", "/docs/oauth2-redirect"),
        ("GET", "/openapi.json"),
        ("GET", "/t/{token}"),
        ("GET", "/t/{token}/status"),
        ("GET", "/t/assets/{name}"),
    }
    assert expected_public == PUBLIC_ROUTES
    assert {key for key, roles in route_table(app).items() if roles is None} == expected_public


def test_public_routes_answer_without_credentials(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/docs/oauth2-redirect").status_code == 200
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/api/v1/scans"]["get"]["x-roles"] == [
        "admin",
        "dispatcher",
        "dock",
        "viewer",
    ]
    assert client.post("/api/v1/auth/login", json={}).status_code == 422  # not 401


def test_every_guarded_route_refuses_anonymous_and_bad_tokens(
    app: FastAPI, client: TestClient
) -> None:
    guarded = _guarded(app)
    assert len(guarded) >= 14
    for method, path in guarded:
        assert _call(client, method, path, {}) == 401, (method, path)
        if method != "WS":  # a WebSocket closes with a code, without headers or a body
            anonymous = client.request(method, _url(path))
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in anonymous.json()["detail"]
        for junk in ("Bearer not-a-jwt", "Bearer tlk_1_guess", "Token abc"):
            status = _call(client, method, path, {"Authorization": junk})
            assert status == 401, (method, path, junk)


def test_each_role_reaches_exactly_its_routes(
    app: FastAPI, client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    for method, path in _guarded(app):
        allowed = route_table(app)[(method, path)]
        assert allowed is not None
        for role, headers in role_headers.items():
            if method == "WS":  # connects and authenticates for real: see _call
                expected = 200 if role is Role.ADMIN or role in allowed else 403
                assert _call(client, method, path, headers) == expected, (path, role)
                continue
            r = client.request(method, _url(path), headers=headers)
            if role is Role.ADMIN or role in allowed:
                # 200, or 404/422 for the dummy id and empty body: past the guard either way.
                assert r.status_code in (200, 204, 404, 422), (method, path, role, r.text)
            else:
                assert r.status_code == 403, (method, path, role, r.text)
                assert f"is {role}" in r.json()["detail"]


def test_an_unguarded_websocket_stops_the_app_from_starting(database_url: str) -> None:
    app = _app(database_url)

    @app.websocket("/api/v1/open-socket")
    async def open_socket(websocket: WebSocket) -> None:
        await websocket.close()

    assert route_table(app)[("WS", "/api/v1/open-socket")] is None
    with pytest.raises(RuntimeError, match=r"open-socket.*no role guard"):
        _check_every_route_is_guarded(app)


def test_healthz_reports_database_storage_and_ingest_only(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "database": "ok",
        "storage": {"mode": "postgresql"},
        "ingest": {"status": "ok", "broker": "connected"},  # counts stay in /metrics
    }
    assert SECRET not in r.text
    # Versions tell an anonymous caller which CVEs to try; they stay in the service log.
    assert MODE.server_version not in r.text
    assert MODE.note not in r.text


def test_healthz_is_degraded_when_ingest_says_so(database_url: str) -> None:
    def stalled() -> dict:
        return {"status": "stalled", "broker": "disconnected"}

    with TestClient(_app(database_url, ingest_health=stalled)) as client:
        r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["ingest"] == {"status": "stalled", "broker": "disconnected"}


def test_healthz_is_degraded_when_ingest_fails(database_url: str) -> None:
    def broken() -> dict:
        raise RuntimeError("consumer thread died: password=hunter2")

    with TestClient(_app(database_url, ingest_health=broken)) as client:
        r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["status"] == "degraded"
    assert r.json()["database"] == "ok"
    assert "hunter2" not in r.text  # exception text may carry anything; it stays in the log


def test_database_down_gives_degraded_health_and_503s(unused_port: int) -> None:
    app = _app(f"postgresql://nobody@127.0.0.1:{unused_port}/none?connect_timeout=1")
    with TestClient(app) as client:
        started = time.monotonic()
        health = client.get("/healthz")
        assert time.monotonic() - started < 10
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["database"].startswith("error: database unreachable")
        assert str(unused_port) not in health.text  # no hosts or ports for anonymous callers
        # A token that needs the database to check; a badly signed session would be a 401.
        r = client.get("/api/v1/scans", headers={"Authorization": "Bearer tlk_1_whatever"})
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert "retry" in r.json()["detail"]


def test_metrics_serves_the_given_registry_to_viewers(
    client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    r = client.get("/metrics", headers=role_headers[Role.VIEWER])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "tracklane_test_events_total 3.0" in r.text


def test_errors_are_problem_documents_that_say_what_to_fix(
    client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    viewer = role_headers[Role.VIEWER]
    r = client.get("/api/v1/positions", params={"limit": 0}, headers=viewer)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Invalid request"
    assert "limit" in r.json()["detail"]
    typo = client.get("/api/v1/positions", params={"gatway": "gw-1"}, headers=viewer)
    assert typo.status_code == 422
    assert "gatway" in typo.json()["detail"]  # a misspelt filter is an error, not ignored
    missing = client.get("/api/v1/nothing-here", headers=viewer)
    assert missing.status_code == 404
    assert missing.json()["status"] == 404


def test_unexpected_errors_are_problem_documents_with_a_reference(database_url: str) -> None:
    app = _app(database_url)

    @app.get("/boom")
    async def boom() -> None:
        raise ZeroDivisionError("internal detail: customer ACME")

    # Ahead of the dashboard's mount at "/", which would otherwise answer /boom with a 404.
    app.router.routes.insert(0, app.router.routes.pop())

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["ref"] in r.json()["detail"]
    assert "ACME" not in r.text
