"""Stored events read back through the API: filters, newest-first pages, latest-per-device."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from ingest_service.api import create_app
from ingest_service.auth import ensure_admin
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode

SECRET = "test-only-session-key-0123456789abcdef"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# (gateway, device, seconds after T0, lat). Two trackers fix on the same second at t=20.
POSITIONS = [
    ("gw-a", "truck-1", 0, 52.00),
    ("gw-a", "truck-1", 10, 52.01),
    ("gw-a", "truck-1", 20, 52.02),
    ("gw-a", "truck-2", 20, 48.10),
    ("gw-a", "truck-2", 30, 48.11),
    ("gw-b", "truck-1", 5, 40.50),  # same device name behind another gateway
]
# (gateway, code, door, seconds)
SCANS = [
    ("gw-a", "00012345600012345678", "door-1", 0),
    ("gw-a", "00012345600012345678", "door-2", 60),
    ("gw-a", "4006381333931", "door-1", 120),
    ("gw-b", "00012345600012345678", "door-9", 180),
]
# (gateway, device, state, seconds)
STATUS = [
    ("gw-a", "reader-1", "online", 0),
    ("gw-a", "reader-1", "offline", 50),
    ("gw-a", "scanner-1", "offline", 10),
    ("gw-a", "scanner-1", "online", 40),
]


@pytest.fixture
def db(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        ensure_admin(conn, username="admin", password="admin-password-long")
        for seq, (gw, dev, s, lat) in enumerate(POSITIONS):
            conn.execute(
                "INSERT INTO positions (time, event_id, site, gateway, device, seq, lat, lon,"
                " speed_mps, fix_quality, received_at) VALUES (%s, %s, 'wh1', %s, %s, %s, %s,"
                " 13.4, 8.5, 1, %s)",
                (at(s), uuid.uuid4(), gw, dev, seq, lat, at(s + 1)),
            )
        for seq, (gw, code, door, s) in enumerate(SCANS):
            conn.execute(
                "INSERT INTO scans (time, event_id, site, gateway, device, seq, code, code_kind,"
                " read_count, door, stage, received_at) VALUES (%s, %s, 'wh1', %s, 'scanner-1',"
                " %s, %s, 'barcode', 1, %s, 'dispatch', %s)",
                (at(s), uuid.uuid4(), gw, seq, code, door, at(s)),
            )
        for seq, (gw, dev, state, s) in enumerate(STATUS):
            conn.execute(
                "INSERT INTO device_status (time, event_id, site, gateway, device, seq, state,"
                " detail, counters, received_at) VALUES (%s, %s, 'wh1', %s, %s, %s, %s, %s, %s,"
                " %s)",
                (
                    at(s),
                    uuid.uuid4(),
                    gw,
                    dev,
                    seq,
                    state,
                    f"{state} since t={s}",
                    json.dumps({"reads": s}),
                    at(s),
                ),
            )
    return database_url


@pytest.fixture
def client(db: str) -> Iterator[TestClient]:
    app = create_app(
        settings=Settings(secret_key=SECRET, _env_file=None),
        database_url=db,
        storage_mode=StorageMode("postgresql", "test"),
    )
    with TestClient(app) as c:
        r = c.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "admin-password-long"}
        )
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield c


def test_positions_newest_first_with_filters(client: TestClient) -> None:
    items = client.get("/api/v1/positions").json()["items"]
    assert len(items) == len(POSITIONS)
    times = [datetime.fromisoformat(i["time"]) for i in items]
    assert times == sorted(times, reverse=True)
    assert items[0]["lat"] == 48.11

    r = client.get("/api/v1/positions", params={"gateway": "gw-a", "device": "truck-1"})
    assert [i["lat"] for i in r.json()["items"]] == [52.02, 52.01, 52.00]

    r = client.get(
        "/api/v1/positions",
        params={"device": "truck-1", "since": at(5).isoformat(), "until": at(10).isoformat()},
    )
    assert sorted(i["lat"] for i in r.json()["items"]) == [40.50, 52.01]  # both ends included

    r = client.get("/api/v1/positions", params={"before": at(10).isoformat()})
    assert sorted(i["lat"] for i in r.json()["items"]) == [40.50, 52.00]  # strictly before


def test_positions_pages_cover_every_row_once_even_with_equal_times(client: TestClient) -> None:
    seen: list[float] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/positions", params=params).json()
        seen += [i["lat"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == len(POSITIONS)
    assert sorted(seen) == sorted(lat for *_, lat in POSITIONS)

    r = client.get("/api/v1/positions", params={"cursor": "made-up"})
    assert r.status_code == 422
    assert "cursor" in r.json()["detail"]


def _forged(time_text: object, key: object) -> str:
    raw = json.dumps([time_text, key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_forged_cursors_are_refused_not_errors(
    client: TestClient, quarantined: dict[str, int]
) -> None:
    t = at(0).isoformat()
    positions_cursor = client.get("/api/v1/positions", params={"limit": 1}).json()["next_cursor"]
    quarantine_cursor = client.get("/api/v1/quarantine", params={"limit": 1}).json()["next_cursor"]
    forged = {
        "/api/v1/positions": [
            _forged(t, "not-a-uuid"),
            _forged(t, "1; DROP TABLE positions"),
            _forged(t, 42),  # a quarantine id, but positions are keyed by UUID
            _forged(t, [1, 2]),
            _forged("2025-03-01T08:00:00", str(uuid.uuid4())),  # no timezone
            _forged(t, {"k": 1}),
            quarantine_cursor,  # a real cursor, from another list
            base64.urlsafe_b64encode(b"[" * 3000).decode(),  # too long, and too deep
        ],
        "/api/v1/quarantine": [
            _forged(t, str(uuid.uuid4())),
            _forged(t, str(2**63)),  # past bigint
            _forged(t, "12.5"),
            positions_cursor,
        ],
    }
    for path, cursors in forged.items():
        for cursor in cursors:
            r = client.get(path, params={"cursor": cursor})
            assert r.status_code == 422, (path, cursor[:60], r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert "cursor is not one this API issued" in r.json()["detail"]
    # Every key kind is still accepted where it belongs.
    assert client.get("/api/v1/positions", params={"cursor": positions_cursor}).is_success
    assert client.get("/api/v1/quarantine", params={"cursor": quarantine_cursor}).is_success


def test_times_without_a_timezone_are_refused(client: TestClient) -> None:
    r = client.get("/api/v1/positions", params={"since": "2025-03-01T08:00:00"})
    assert r.status_code == 422
    assert "timezone" in r.json()["detail"]


def test_latest_position_per_gateway_and_device(client: TestClient) -> None:
    latest = client.get("/api/v1/positions/latest").json()
    assert {(p["gateway"], p["device"]): p["lat"] for p in latest} == {
        ("gw-a", "truck-1"): 52.02,
        ("gw-a", "truck-2"): 48.11,
        ("gw-b", "truck-1"): 40.50,
    }
    fresh = client.get("/api/v1/positions/latest", params={"since": at(15).isoformat()}).json()
    assert {(p["gateway"], p["device"]) for p in fresh} == {
        ("gw-a", "truck-1"),
        ("gw-a", "truck-2"),
    }


def test_scans_filtered_by_code_door_and_gateway(client: TestClient) -> None:
    sscc = "00012345600012345678"
    r = client.get("/api/v1/scans", params={"code": sscc}).json()
    assert [s["door"] for s in r["items"]] == ["door-9", "door-2", "door-1"]
    r = client.get("/api/v1/scans", params={"code": sscc, "gateway": "gw-a"}).json()
    assert [s["door"] for s in r["items"]] == ["door-2", "door-1"]
    r = client.get("/api/v1/scans", params={"door": "door-1"}).json()
    assert [s["code"] for s in r["items"]] == ["4006381333931", sscc]
    assert r["items"][0]["stage"] == "dispatch"
    r = client.get("/api/v1/scans", params={"since": at(100).isoformat(), "limit": 1}).json()
    assert [s["door"] for s in r["items"]] == ["door-9"]
    assert r["next_cursor"] is not None


def test_device_status_shows_the_latest_state(client: TestClient) -> None:
    status = client.get("/api/v1/devices/status").json()
    assert {s["device"]: s["state"] for s in status} == {
        "reader-1": "offline",
        "scanner-1": "online",
    }
    assert {s["device"]: s["counters"] for s in status}["reader-1"] == {"reads": 50}
    # Filtering by state asks "what is down now", not "what was ever down".
    down = client.get("/api/v1/devices/status", params={"state": "offline"}).json()
    assert [s["device"] for s in down] == ["reader-1"]


@pytest.fixture
def quarantined(db: str) -> dict[str, int]:
    binary = bytes([0xFF, 0x00, 0x9C, 0x80])
    ids = {}
    with psycopg.connect(db) as conn:
        for name, topic, reason, payload in (
            ("text", "tracklane/v1/wh1/gw-a/scans", "scan: code is empty", b'{"code": ""}'),
            ("binary", "tracklane/v1/wh1/gw-a/positions", "not JSON", binary),
        ):
            (ids[name],) = conn.execute(
                "INSERT INTO quarantine (topic, reason, payload) VALUES (%s, %s, %s) RETURNING id",
                (topic, reason, payload),
            ).fetchone()
    return ids


def test_quarantine_shows_text_or_base64_and_resolves(
    client: TestClient, quarantined: dict[str, int]
) -> None:
    items = {i["id"]: i for i in client.get("/api/v1/quarantine").json()["items"]}
    text, binary = items[quarantined["text"]], items[quarantined["binary"]]
    assert text["payload"] == '{"code": ""}'
    assert text["payload_encoding"] == "utf-8"
    assert text["reason"] == "scan: code is empty"
    assert binary["payload_encoding"] == "base64"
    assert base64.b64decode(binary["payload"]) == bytes([0xFF, 0x00, 0x9C, 0x80])
    assert binary["payload_bytes"] == 4

    by_topic = client.get("/api/v1/quarantine", params={"topic": "tracklane/v1/wh1/gw-a/scans"})
    assert [i["id"] for i in by_topic.json()["items"]] == [quarantined["text"]]

    r = client.post(f"/api/v1/quarantine/{quarantined['text']}/resolve")
    assert r.status_code == 200
    assert r.json()["resolved_by"] == "admin"
    assert r.json()["resolved_at"] is not None
    still_open = client.get("/api/v1/quarantine").json()["items"]
    assert [i["id"] for i in still_open] == [quarantined["binary"]]
    everything = client.get("/api/v1/quarantine", params={"include_resolved": True}).json()
    assert len(everything["items"]) == 2

    again = client.post(f"/api/v1/quarantine/{quarantined['text']}/resolve")
    assert again.status_code == 409
    assert "already resolved by admin" in again.json()["detail"]
    assert client.post("/api/v1/quarantine/999999/resolve").status_code == 404
