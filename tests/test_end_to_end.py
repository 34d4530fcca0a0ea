"""The whole path: simulated devices → edge agent → Mosquitto → ingest → PostgreSQL → API.

Every event the agent got a PUBACK for must be stored exactly once and be readable back
through the API. Then the README's demo command, run for a few seconds, must lose nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from edge_agent.agent import EdgeAgent
from edge_agent.config import load_gateway_config
from ingest_service.api import create_app
from ingest_service.auth.users import ensure_admin
from ingest_service.pipeline.consumer import ConsumerConfig, IngestConsumer
from ingest_service.pipeline.stats import IngestStats
from ingest_service.settings import Settings
from ingest_service.storage.mode import StorageMode
from mqtt_client import BrokerAddress
from simulators import GpsSimConfig, GpsSimulator, ScannerSimConfig, ScannerSimulator
from tests.mqtt_helpers import wait_until
from tracklane.demo_devices import DemoDevices, pointed_at
from tracklane.embedded.broker import free_port

CONFIGS = Path(__file__).resolve().parent.parent / "firmware_configs"
SCANNERS = {"dock-a": "scanner-1", "dock-b": "dock-b-reader"}  # gateway -> its scanning device


async def run_gateways(broker: BrokerAddress, seconds: float) -> list:
    """The demo's three gateways: GPS over TCP, a scanner on a serial pty, an LLRP reader."""
    published: list = []
    gps_config = GpsSimConfig(rate_hz=10, speed_mps=15, noise_m=1.0)
    async with (
        GpsSimulator(gps_config) as gps,
        ScannerSimulator(ScannerSimConfig(rate_hz=10, pty=True)) as sc,
        DemoDevices() as devices,
    ):
        truck = load_gateway_config(CONFIGS / "demo-truck-1.toml").with_endpoints(
            {"truck-1-gps": (gps.host, gps.port)}
        )
        dock_a = load_gateway_config(CONFIGS / "demo-dock-a.toml")
        serial = pointed_at(dock_a.source("scanner-1"), "dock-a", port_url=sc.pty_path)
        dock_a = dock_a.model_copy(update={"sources": [serial]})
        dock_b = await devices.attach(load_gateway_config(CONFIGS / "demo-dock-b.toml"))
        stop = asyncio.Event()
        agents = [
            EdgeAgent(c, broker, on_published=published.extend) for c in (truck, dock_a, dock_b)
        ]
        tasks = [asyncio.create_task(a.run(stop)) for a in agents]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
    return published


def test_devices_to_api_every_event_stored_exactly_once(
    mqtt_broker: BrokerAddress, database_url: str
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    consumer = IngestConsumer(
        broker=mqtt_broker,
        database_url=database_url,
        config=ConsumerConfig(client_id=f"ingest-{group}", share_group=group),
        stats=IngestStats(CollectorRegistry()),
    ).start()
    try:
        wait_until(lambda: consumer.stats.connected, what="ingest to connect")
        published = asyncio.run(run_gateways(mqtt_broker, seconds=4))
        by_type = {t: [e for e in published if e.type == t] for t in ("position", "scan")}
        scans = {g: [e for e in by_type["scan"] if e.device == d] for g, d in SCANNERS.items()}
        assert len(by_type["position"]) >= 20 and len(scans["dock-a"]) >= 20
        assert scans["dock-b"], "the RFID reader's pallets became scans"
        assert {e.symbology for e in scans["dock-b"]} <= {"sscc-96", "sgtin-96"}

        ids = [e.event_id for e in published]
        query = (
            "SELECT event_id, count(*) FROM (SELECT event_id FROM positions UNION ALL"
            " SELECT event_id FROM scans UNION ALL SELECT event_id FROM device_status) e"
            " GROUP BY event_id"
        )

        def stored() -> dict:
            with psycopg.connect(database_url) as conn:
                return dict(conn.execute(query).fetchall())

        counts = wait_until(lambda: (c := stored()) and len(c) >= len(ids) and c, what="storage")
        assert set(counts) == set(ids), "stored exactly what was published"
        snap = consumer.stats.snapshot()
        assert snap["events_stored"] == len(ids), "each stored by one insert, none skipped"
        assert snap["duplicates"] == snap["quarantined"] == 0
    finally:
        consumer.stop()

    with psycopg.connect(database_url) as conn:
        ensure_admin(conn, username="admin", password="an-admin-password")
    app = create_app(
        settings=Settings(secret_key="k" * 40, _env_file=None),
        database_url=database_url,
        storage_mode=StorageMode("postgresql", "test"),
    )
    with TestClient(app) as client:
        token = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "an-admin-password"}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        fixes = client.get("/api/v1/positions", params={"device": "truck-1-gps"}).json()["items"]
        stored_scans = {
            g: client.get("/api/v1/scans", params={"gateway": g}).json()["items"] for g in SCANNERS
        }
    assert sorted(f["event_id"] for f in fixes) == sorted(
        str(e.event_id) for e in by_type["position"]
    )
    for gateway, items in stored_scans.items():
        assert [s["code"] for s in sorted(items, key=lambda s: s["seq"])] == [
            e.code for e in sorted(scans[gateway], key=lambda e: e.seq)
        ], gateway


@pytest.mark.slow
def test_demo_command_runs_and_loses_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
    env["TRACKLANE_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "tracklane", "demo", "--for", "120", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Login:  admin / " in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["lost"] == 0
    assert summary["events_stored"] == summary["events_published"] > 0
    assert summary["quarantined"] >= 1, "the demo's malformed message is caught"
    kinds = summary["events_by_kind"]
    assert kinds["rfid_scans"] > 0 and kinds["serial_scans"] > 0 and kinds["positions"] > 0
    # The warehouse's waves. The first fits in the two minutes: every order packed and loaded
    # by scans alone (the one deliberate wrong load caught), driven out by the trucks,
    # arrived by their positions alone and confirmed delivered by the drivers. A wave whose
    # trucks are home with their trips completed has every order delivered; every wave that
    # got as far as its wrong load has exactly that one exception, and nothing else.
    waves = summary["by_wave"]
    assert summary["waves"] == len(waves) >= 1
    assert waves[0]["orders"] == {"delivered": 6}
    for wave in waves:
        trips = wave["trips"]
        assert sum(trips.values()) == 2 and set(trips) <= {"loading", "departed", "completed"}
        if trips == {"completed": 2}:
            assert wave["orders"] == {"delivered": 6}, wave
        caught = {"wrong_load": 1} if wave["wrong_loads_attempted"] else {}
        assert wave["exceptions"] == caught, wave
    assert all(w["wrong_loads_attempted"] == 1 for w in waves[:-1]), "one per finished wave"
    for key in ("orders", "exceptions", "trips"):  # the run's totals add up the waves
        total = sum((Counter(w[key]) for w in waves), Counter())
        assert summary[key] == dict(total), key
    # Customers heard about it by mail (the demo's local SMTP sink): each delivered order's
    # customer got dispatched, arriving, arrived and delivered once each, with a tracking link.
    notes = summary["notifications"]
    assert notes["delivered_orders"] >= 6
    assert notes["delivered_orders_fully_notified"] == notes["delivered_orders"], notes
    assert "dead" not in notes["by_status"], notes
    sent = notes["by_status"]["sent"]
    assert sent["email:delivered"] == notes["delivered_orders"]
    assert sent["email:confirmed"] >= 6
    # The inbound shipment: announced by the supplier, received by scans at door-2 through
    # MQTT and ingest, reconciled, and its short line (two lamps that never came) caught.
    inbound = summary["inbound"]
    assert inbound["receipt_status"] == "short", inbound
    assert inbound["exceptions"] == {"short_receipt": 1}, inbound
    assert [(x["sku"], x["shipped"], x["received"]) for x in inbound["lines"]] == [
        ("SKU-CHAIR", 12, 12),
        ("SKU-DESK", 4, 4),
        ("SKU-LAMP", 10, 8),
    ]
    # The private broker admitted each gateway as its own provisioned user.
    users = (tmp_path / "data" / "mosquitto" / "passwd").read_text()
    for user in ("ingest", "gw-wh1-dock-a", "gw-wh1-dock-b", "gw-wh1-truck-1", "gw-wh1-truck-2"):
        assert f"\n{user}:$7$" in f"\n{users}"
    assert (
        "allow_anonymous false" in (tmp_path / "data" / "mosquitto" / "mosquitto.conf").read_text()
    )
