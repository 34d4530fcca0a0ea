"""The live stream end to end: a real uvicorn, real WebSocket clients, real triggers.

Rows are written to the test's database with plain SQL, so the migration's triggers fire and
the app's listener hears them exactly as it would hear ingest. Timings (auth timeout,
recheck, reconnect backoff) are shortened through `app.state.live_options`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from uuid import uuid4

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from event_contract import DeviceStatus, PositionEvent, ScanEvent
from ingest_service.api import create_app
from ingest_service.auth import Role, User
from ingest_service.auth.passwords import hash_secret
from ingest_service.auth.tokens import issue_session
from ingest_service.live import APPLICATION_NAME, LiveOptions
from ingest_service.orders.matcher import ScanMatcher
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode
from ingest_service.storage.writer import BatchWriter
from ingest_service.tracking import PositionTracker

SECRET = "test-only-session-key-0123456789abcdef"
OPTIONS = LiveOptions(auth_timeout_s=0.5, recheck_s=0.5, reconnect_min_s=0.1, keepalive_s=2)


@dataclass
class Server:
    app: FastAPI
    base: str  # http://127.0.0.1:port
    tokens: dict[Role, str]
    user_ids: dict[Role, int]
    database_url: str

    def ws(self) -> ClientConnection:
        return connect(self.base.replace("http", "ws") + "/api/v1/live", open_timeout=5)

    @contextmanager
    def login(self, role: Role, **subscribe: Any) -> Iterator[ClientConnection]:
        """A client authenticated as `role`, past `ready` (and `subscribed` if asked)."""
        with self.ws() as ws:
            ws.send(json.dumps({"type": "auth", "token": self.tokens[role]}))
            assert recv(ws)["type"] == "ready"
            if subscribe:
                ws.send(json.dumps({"type": "subscribe", **subscribe}))
                answer = recv(ws)
                assert answer["type"] == "subscribed", answer
            yield ws

    def sql(self, statement: str, params: Any = None) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(statement, params)


def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def collect(
    ws: ClientConnection, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Messages received until `until(messages)` holds; fails after `timeout`."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not until(messages):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; got {messages}")
        try:
            messages.append(recv(ws, timeout=left))
        except TimeoutError:
            raise AssertionError(f"timed out; got {messages}") from None
    return messages


def quiet(ws: ClientConnection, seconds: float = 0.4) -> list[dict[str, Any]]:
    """Whatever arrives within `seconds` (to show that something did not)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            got.append(recv(ws, timeout=left))
        except TimeoutError:
            break
    return got


def items(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [i for m in messages if m["type"] == kind for i in m["items"]]


def close_code(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=timeout)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@contextmanager
def serve(database_url: str, **settings: Any) -> Iterator[Server]:
    """The API on a free port, with one user (and session token) per role."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO vehicles (id, name) SELECT 'truck-' || i, 'T' || i"
                     " FROM generate_series(1, 5) i")  # fmt: skip
        conn.execute("INSERT INTO vehicle_state (vehicle_id) SELECT id FROM vehicles")
        conn.execute(
            "INSERT INTO trips (id, vehicle_id, origin_site, state) VALUES"
            " ('T1', 'truck-1', 'wh1', 'departed'), ('T2', 'truck-2', 'wh1', 'loading')"
        )
    app = create_app(
        settings=Settings(secret_key=SECRET, _env_file=None, **settings),
        database_url=database_url,
        storage_mode=StorageMode("postgresql", "test"),
        registry=CollectorRegistry(),
    )
    app.state.live_options = OPTIONS
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started)
        wait_until(lambda: app.state.live_hub.metrics.listener_connected)
        tokens, ids = _users(database_url)
        yield Server(app, base, tokens, ids, database_url)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@cache
def _password_hash() -> str:
    return hash_secret("a-password-nobody-uses")  # argon2 once per run, not per user


def _users(database_url: str) -> tuple[dict[Role, str], dict[Role, int]]:
    """One user per role, with a session token each (made directly: no argon2 per test)."""
    tokens: dict[Role, str] = {}
    ids: dict[Role, int] = {}
    with psycopg.connect(database_url) as conn:
        for role in Role:
            row = conn.execute(
                "INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s)"
                " RETURNING id, username, role, active, created_at, password_hash",
                (f"user-{role}", _password_hash(), role.value),
            ).fetchone()
            assert row is not None
            columns = ("id", "username", "role", "active", "created_at", "password_hash")
            user = User.from_row(dict(zip(columns, row, strict=True)))
            tokens[role], _ = issue_session(user=user, secret_key=SECRET, hours=1)
            ids[role] = user.id
    return tokens, ids


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    with serve(database_url) as s:
        yield s


def move(s: Server, vehicle: str, lat: float, lon: float, second: int = 0) -> None:
    s.sql(
        "UPDATE vehicle_state SET lat = %s, lon = %s, speed_mps = 10,"
        " last_fix_at = '2026-01-01T00:00:00Z'::timestamptz + %s * interval '1 second'"
        " WHERE vehicle_id = %s",
        (lat, lon, second, vehicle),
    )


# --- authentication and roles -------------------------------------------------------------


def test_a_client_that_sends_no_auth_is_closed_with_4401(server: Server) -> None:
    with server.ws() as ws:
        started = time.monotonic()
        assert close_code(ws) == 4401
        assert time.monotonic() - started >= OPTIONS.auth_timeout_s * 0.9


@pytest.mark.parametrize(
    "first",
    [
        {"type": "auth", "token": "not-a-jwt"},
        {"type": "auth", "token": "tlk_1_guess"},
        {"type": "auth"},
        {"type": "subscribe"},
        "not json",
    ],
)
def test_a_bad_first_message_is_closed_with_4401(server: Server, first: object) -> None:
    with server.ws() as ws:
        ws.send(first if isinstance(first, str) else json.dumps(first))
        assert close_code(ws) == 4401


@pytest.mark.parametrize("role", [Role.DRIVER, Role.SUPPLIER])
def test_drivers_and_suppliers_are_refused_with_4403(server: Server, role: Role) -> None:
    with server.ws() as ws:
        ws.send(json.dumps({"type": "auth", "token": server.tokens[role]}))
        assert close_code(ws) == 4403


def test_watchers_get_ready_with_the_streams_of_their_role(server: Server) -> None:
    everything = ["vehicles", "orders", "exceptions", "scans", "etas", "gateways"]
    for role, streams in [
        (Role.ADMIN, everything),
        (Role.DISPATCHER, everything),
        (Role.VIEWER, everything),
        (Role.DOCK, ["scans", "gateways"]),
    ]:
        with server.ws() as ws:
            ws.send(json.dumps({"type": "auth", "token": server.tokens[role]}))
            ready = recv(ws)
            assert ready == {"type": "ready", "user": ready["user"], "role": role.value,
                             "streams": streams}  # fmt: skip


def test_api_tokens_work_too_and_a_disabled_user_is_closed_on_recheck(server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.tokens[Role.ADMIN]}"}
    with httpx.Client(base_url=server.base, headers=admin) as http:
        body = {"user_id": server.user_ids[Role.VIEWER], "name": "wall screen"}
        api_token = http.post("/api/v1/tokens", json=body).json()["token"]
        with server.ws() as ws:
            ws.send(json.dumps({"type": "auth", "token": api_token}))
            assert recv(ws)["role"] == "viewer"
            r = http.patch(f"/api/v1/users/{server.user_ids[Role.VIEWER]}", json={"active": False})
            assert r.status_code == 200, r.text
            assert close_code(ws, timeout=3 * OPTIONS.recheck_s + 2) == 4401


def test_dock_workers_get_only_scans_and_gateways(server: Server) -> None:
    with server.login(Role.DOCK) as dock, server.login(Role.VIEWER) as viewer:
        dock.send(json.dumps({"type": "subscribe", "streams": ["vehicles"]}))
        refused = recv(dock)
        assert refused["type"] == "error" and "may watch scans, gateways" in refused["detail"]
        move(server, "truck-1", 52.5, 13.4)
        server.sql("INSERT INTO exceptions (kind, summary, opened_by) VALUES ('other', 'x', 'me')")
        server.sql(
            "INSERT INTO device_status (time, event_id, site, gateway, device, seq, state,"
            " received_at) VALUES (now(), gen_random_uuid(), 'wh1', 'gw-1', 'scanner-1', 1,"
            " 'online', now())"
        )
        _scan(server, "wh1", "door-3", "SSCC-1")
        kinds = {"vehicles", "exceptions", "gateways", "scans"}
        seen = collect(viewer, lambda ms: kinds <= {m["type"] for m in ms})
        assert items(seen, "vehicles")[0]["vehicle_id"] == "truck-1"
        dock_seen = collect(dock, lambda ms: {"gateways", "scans"} <= {m["type"] for m in ms})
        dock_seen += quiet(dock)
        assert {m["type"] for m in dock_seen} == {"gateways", "scans"}
        scan = items(dock_seen, "scans")[0]
        assert (scan["door"], scan["code"], scan["verdict"]) == ("door-3", "SSCC-1", "accept")
        assert items(dock_seen, "gateways")[0]["state"] == "online"


def _scan(s: Server, site: str, door: str, code: str) -> None:
    """A stored scan and its outcome, as ingest writes them: one transaction."""
    with psycopg.connect(s.database_url) as conn:
        event_id = conn.execute(
            "INSERT INTO scans (time, event_id, site, gateway, device, seq, code, code_kind,"
            " read_count, door, received_at) VALUES (now(), gen_random_uuid(), %s, 'gw-1',"
            " 'scanner-1', 1, %s, 'sscc', 1, %s, now()) RETURNING event_id",
            (site, code, door),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO scan_outcomes (event_id, site, gateway, door, match_kind, verdict)"
            " VALUES (%s, %s, 'gw-1', %s, 'package', 'accept')",
            (event_id, site, door),
        )


def test_ingests_own_writes_reach_the_stream(server: Server) -> None:
    """Positions through tracking, a scan through the matcher, a status: ingest's write paths
    (UPDATE from unnest, COPY, INSERT from staging) all fire the triggers."""
    server.sql(
        "INSERT INTO trackers (site, gateway, device, vehicle_id, assigned_by)"
        " VALUES ('fleet', 'gw-truck', 'gps-5', 'truck-5', 'test')"
    )
    now = datetime.now(UTC)
    stamp = {"device_time": now, "received_at": now}
    position = PositionEvent(event_id=uuid4(), device="gps-5", seq=1, lat=50.1, lon=8.6,
                             speed_mps=12.5, heading_deg=90, **stamp)  # fmt: skip
    status = DeviceStatus(event_id=uuid4(), device="gps-5", seq=2, state="degraded",
                          detail="weak signal", **stamp)  # fmt: skip
    scan = ScanEvent(event_id=uuid4(), device="scanner-1", seq=1, code="UNKNOWN-CODE",
                     code_kind="barcode", read_point={"site": "wh1", "door": "door-7"},
                     **stamp)  # fmt: skip
    with server.login(Role.ADMIN) as ws, psycopg.connect(server.database_url) as conn:
        tracker = PositionTracker(arriving_eta_min=10, approach_radius_m=500)
        writer = BatchWriter(conn, matcher=ScanMatcher(), tracker=tracker)
        writer.write([("fleet", "gw-truck", position), ("fleet", "gw-truck", status),
                      ("wh1", "gw-dock", scan)])  # fmt: skip
        got = collect(ws, lambda ms: {"vehicles", "gateways", "scans"} <= {m["type"] for m in ms})
    (vehicle,) = items(got, "vehicles")
    assert (vehicle["vehicle_id"], vehicle["lat"], vehicle["lon"]) == ("truck-5", 50.1, 8.6)
    assert vehicle["last_fix_at"] == now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    (gateway,) = items(got, "gateways")
    assert (gateway["gateway"], gateway["state"], gateway["detail"]) == (
        "gw-truck", "degraded", "weak signal"
    )  # fmt: skip
    (outcome,) = items(got, "scans")
    assert (outcome["door"], outcome["code"], outcome["event_id"]) == (
        "door-7", "UNKNOWN-CODE", str(scan.event_id)
    )  # fmt: skip


# --- subscriptions ------------------------------------------------------------------------


def test_subscriptions_filter_each_stream_by_its_keys(server: Server) -> None:
    server.sql(
        "INSERT INTO customers (ref, name) VALUES ('C1', 'Customer');"
        " INSERT INTO orders (number, customer_id, dest_address, trip_id, created_by)"
        " SELECT n, (SELECT id FROM customers), 'somewhere', t, 'test'"
        " FROM (VALUES ('SO-1', 'T1'), ('SO-2', NULL), ('SO-3', 'T2')) AS v(n, t)"
    )
    berlin = [13.0, 52.0, 14.0, 53.0]
    with (
        server.login(Role.VIEWER, bbox=berlin, vehicles=["truck-3"]) as viewport,
        server.login(Role.DISPATCHER, trip="T1") as trip,
        server.login(Role.DISPATCHER, orders=["SO-2"], streams=["orders", "exceptions"]) as order,
        server.login(Role.DOCK, doors=["wh1/door-3"]) as door,
        server.login(Role.ADMIN) as everything,
    ):
        move(server, "truck-1", 52.5, 13.4)  # in Berlin, on trip T1
        move(server, "truck-2", 48.1, 11.6)  # Munich, loading T2
        move(server, "truck-3", 48.2, 11.5)  # Munich, but followed
        for number, to in [("SO-1", "picking"), ("SO-2", "picking"), ("SO-3", "picking")]:
            server.sql(
                "INSERT INTO order_events (order_id, kind, from_state, to_state, trigger, actor)"
                " SELECT id, 'state', 'created', %s, 'pick_started', 'test' FROM orders"
                " WHERE number = %s",
                (to, number),
            )
        server.sql(
            "INSERT INTO exceptions (kind, summary, order_id, trip_id, vehicle_id, opened_by)"
            " SELECT 'delay', 'late: ' || number, id, trip_id, NULL, 'rule:delay' FROM orders"
            " ORDER BY number"
        )
        _scan(server, "wh1", "door-3", "CODE-A")
        _scan(server, "wh1", "door-4", "CODE-B")

        def has_all(ms: list[dict[str, Any]]) -> bool:
            return (
                len(items(ms, "vehicles")) >= 3
                and len(items(ms, "scans")) >= 2
                and len(items(ms, "exceptions")) >= 3
                and len(items(ms, "orders")) >= 3
            )

        seen = collect(everything, has_all)
        assert {v["vehicle_id"] for v in items(seen, "vehicles")} == {"truck-1", "truck-2",
                                                                     "truck-3"}  # fmt: skip
        truck1 = next(v for v in items(seen, "vehicles") if v["vehicle_id"] == "truck-1")
        assert truck1["trip_id"] == "T1" and truck1["lat"] == 52.5 and truck1["at"] > 0
        assert truck1["last_fix_at"] == "2026-01-01T00:00:00.000Z"

        got = collect(viewport, lambda ms: len(items(ms, "scans")) >= 2) + quiet(viewport)
        # bbox OR followed vehicle: truck-1 (inside) and truck-3 (followed), not truck-2.
        assert {v["vehicle_id"] for v in items(got, "vehicles")} == {"truck-1", "truck-3"}
        assert len(items(got, "orders")) == 3  # bbox and vehicles do not apply to orders

        got = collect(trip, lambda ms: len(items(ms, "scans")) >= 2) + quiet(trip)
        assert {v["vehicle_id"] for v in items(got, "vehicles")} == {"truck-1"}
        assert [o["number"] for o in items(got, "orders")] == ["SO-1"]
        assert [e["order_number"] for e in items(got, "exceptions")] == ["SO-1"]

        got = collect(order, lambda ms: len(items(ms, "exceptions")) >= 1) + quiet(order)
        assert {m["type"] for m in got} == {"orders", "exceptions"}
        assert [o["number"] for o in items(got, "orders")] == ["SO-2"]
        assert [(e["order_number"], e["summary"]) for e in items(got, "exceptions")] == [
            ("SO-2", "late: SO-2")
        ]

        got = collect(door, lambda ms: len(items(ms, "scans")) >= 1) + quiet(door)
        assert [s["code"] for s in items(got, "scans")] == ["CODE-A"]


def test_a_bad_subscription_gets_an_error_and_the_old_one_stays(server: Server) -> None:
    with server.login(Role.VIEWER, vehicles=["truck-2"]) as ws:
        for bad in [
            {"bbox": [13, 53, 14, 52]},  # south > north
            {"bbox": [13, 52, 14]},
            {"streams": ["weather"]},
            {"doors": ["door-3"]},  # needs site/door
            {"colour": "red"},
        ]:
            ws.send(json.dumps({"type": "subscribe", **bad}))
            answer = recv(ws)
            assert answer["type"] == "error", (bad, answer)
            assert "previous" in answer["detail"]
        ws.send(json.dumps({"type": "hello"}))
        assert "subscribe" in recv(ws)["detail"]
        move(server, "truck-1", 1, 1)
        move(server, "truck-2", 2, 2)
        got = collect(ws, lambda ms: bool(items(ms, "vehicles"))) + quiet(ws)
        assert {v["vehicle_id"] for v in items(got, "vehicles")} == {"truck-2"}


# --- coalescing, bounds, resync -----------------------------------------------------------


def test_a_slow_client_gets_the_newest_position_of_each_vehicle(database_url: str) -> None:
    with (
        serve(database_url, live_min_frame_interval_ms=400) as server,
        server.login(Role.VIEWER, streams=["vehicles"]) as ws,
        psycopg.connect(database_url, autocommit=True) as conn,
    ):
        move(server, "truck-1", 0, 0)  # the first flush goes out at once...
        first = collect(ws, lambda ms: bool(ms))
        # ...then 3 vehicles move 20 times each: 60 commits while the client waits.
        for second in range(1, 21):
            for n in (1, 2, 3):
                conn.execute(
                    "UPDATE vehicle_state SET lat = %s, lon = %s, last_fix_at ="
                    " '2026-01-01T00:00:00Z'::timestamptz + %s * interval '1 second'"
                    " WHERE vehicle_id = %s",
                    (n, second / 100, second, f"truck-{n}"),
                )
        got = collect(
            ws,
            lambda ms: (
                {("truck-1", 0.2), ("truck-2", 0.2), ("truck-3", 0.2)}
                <= {(v["vehicle_id"], v["lon"]) for v in items(ms, "vehicles")}
            ),
        )
    assert items(first, "vehicles")[0]["lon"] == 0
    assert all(len(m["items"]) <= 3 for m in got)  # one item per vehicle per frame
    assert len(items(got, "vehicles")) < 30  # far fewer than the 60 positions written


def test_an_overflowing_client_is_told_to_resync(database_url: str) -> None:
    with serve(database_url, live_event_queue=10, live_min_frame_interval_ms=1500) as server:
        hub = server.app.state.live_hub
        with server.login(Role.DISPATCHER, streams=["exceptions"]) as ws:
            server.sql(
                "INSERT INTO exceptions (kind, summary, opened_by) VALUES ('other', 'first', 't')"
            )
            assert items(collect(ws, lambda ms: bool(ms)), "exceptions")[0]["summary"] == "first"
            server.sql(
                "INSERT INTO exceptions (kind, summary, opened_by)"
                " SELECT 'other', 'x' || i, 't' FROM generate_series(1, 40) i"
            )
            got = collect(ws, lambda ms: len(ms) >= 2)
    resync, frame = got
    assert resync["type"] == "resync" and resync["dropped"] == 30
    assert "re-read" in resync["reason"]
    assert [e["summary"] for e in frame["items"]] == [f"x{i}" for i in range(31, 41)]
    assert hub.metrics.items_dropped == 30


def test_the_listener_reconnects_after_its_connection_is_killed(server: Server) -> None:
    with server.login(Role.VIEWER, streams=["vehicles"]) as ws:
        server.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND datname = current_database()",
            (APPLICATION_NAME,),
        )
        resync = recv(ws)
        assert resync["type"] == "resync" and resync["dropped"] == 0
        assert "lost its database connection" in resync["reason"]
        wait_until(lambda: server.app.state.live_hub.metrics.listener_connected)
        move(server, "truck-4", 10, 20)
        assert items(collect(ws, lambda ms: bool(ms)), "vehicles")[0]["vehicle_id"] == "truck-4"


def test_live_metrics_are_on_metrics(server: Server) -> None:
    with server.login(Role.VIEWER), httpx.Client(base_url=server.base) as http:
        headers = {"Authorization": f"Bearer {server.tokens[Role.VIEWER]}"}
        text = http.get("/metrics", headers=headers).text
    for line in [
        "tracklane_live_clients 1.0",
        "tracklane_live_frames_sent_total",
        "tracklane_live_items_coalesced_total",
        "tracklane_live_items_dropped_total 0.0",
        "tracklane_live_listener_connected 1.0",
    ]:
        assert line in text
