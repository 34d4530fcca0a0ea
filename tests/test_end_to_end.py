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
from tracklane.embedded.broker import free_port

CONFIGS = Path(__file__).resolve().parent.parent / "firmware_configs"


async def run_gateways(broker: BrokerAddress, seconds: float) -> list:
    published: list = []
    gps_config = GpsSimConfig(rate_hz=10, speed_mps=15, noise_m=1.0)
    async with (
        GpsSimulator(gps_config) as gps,
        ScannerSimulator(ScannerSimConfig(rate_hz=10)) as sc,
    ):
        truck = load_gateway_config(CONFIGS / "demo-truck-1.toml").with_endpoints(
            {"truck-1-gps": (gps.host, gps.port)}
        )
        dock = load_gateway_config(CONFIGS / "demo-dock-a.toml").with_endpoints(
            {"scanner-1": (sc.host, sc.port)}
        )
        stop = asyncio.Event()
        agents = [EdgeAgent(c, broker, on_published=published.extend) for c in (truck, dock)]
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
        assert len(by_type["position"]) >= 20 and len(by_type["scan"]) >= 20

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
        scans = client.get("/api/v1/scans", params={"gateway": "dock-a"}).json()["items"]
    assert sorted(f["event_id"] for f in fixes) == sorted(
        str(e.event_id) for e in by_type["position"]
    )
    assert [s["code"] for s in sorted(scans, key=lambda s: s["seq"])] == [
        e.code for e in sorted(by_type["scan"], key=lambda e: e.seq)
    ]


@pytest.mark.slow
def test_demo_command_runs_and_loses_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
    env["TRACKLANE_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "tracklane", "demo", "--for", "8", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Login:  admin / " in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["lost"] == 0
    assert summary["events_stored"] == summary["events_published"] > 0
    assert summary["quarantined"] >= 1, "the demo's malformed message is caught"
