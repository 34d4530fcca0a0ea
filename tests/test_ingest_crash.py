"""Ingest SIGKILLed in the middle of a stream and restarted: every event stored, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from event_contract import encode, event_topic
from mqtt_client import BrokerAddress
from simulators import synthetic
from tests.mqtt_helpers import publish_all, wait_until

pytestmark = pytest.mark.slow


def start_ingest(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tracklane", "serve", "--no-api", "--no-migrate"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stored(url: str, device: str = "gps1") -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM positions WHERE device = %s", (device,)
        ).fetchone()[0]


def test_ingest_killed_mid_stream_loses_nothing(
    mqtt_broker: BrokerAddress, database_url: str, tmp_path: Path
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TRACKLANE_DATABASE_URL": database_url,
        "TRACKLANE_MQTT_URL": f"mqtt://{mqtt_broker.host}:{mqtt_broker.port}",
        "TRACKLANE_INGEST_CLIENT_ID": f"ingest-{group}",
        "TRACKLANE_INGEST_SHARE_GROUP": group,
        "TRACKLANE_DATA_DIR": str(tmp_path / "data"),
    }
    log = tmp_path / "ingest.log"
    gw = f"gw-{group}"
    topic = event_topic("wh1", gw, "positions")
    ingest = start_ingest(env, log)
    try:
        # Probes until one is stored prove the shared subscription exists before the stream.
        def probe_stored() -> bool:
            probe = synthetic.positions(site="wh1", gateway=gw, device="probe", count=1)
            publish_all(mqtt_broker, [(topic, encode(next(synthetic.batches(
                probe, site="wh1", gateway=gw, size=1))))])  # fmt: skip
            time.sleep(0.3)
            return stored(database_url, "probe") > 0

        wait_until(probe_stored, timeout=60, what="ingest to subscribe")

        events = synthetic.positions(site="wh1", gateway=gw, device="gps1", count=30_000)
        payloads = [
            (topic, encode(b)) for b in synthetic.batches(events, site="wh1", gateway=gw, size=100)
        ]
        publisher = threading.Thread(
            target=lambda: [publish_all(mqtt_broker, payloads[i : i + 20])
                            for i in range(0, len(payloads), 20) if not time.sleep(0.02)]
        )  # fmt: skip
        publisher.start()
        wait_until(lambda: stored(database_url) > 2_000, timeout=30, what="the stream to flow")
        ingest.send_signal(signal.SIGKILL)
        ingest.wait(10)
        killed_at = stored(database_url)
        time.sleep(1.0)  # the stream goes on while ingest is down
        ingest = start_ingest(env, log)
        publisher.join(60)
        assert not publisher.is_alive()
        wait_until(
            lambda: stored(database_url) == 30_000,
            timeout=60,
            what=f"all 30,000 events (killed with {killed_at} stored)",
        )
        assert killed_at < 30_000, "the kill landed mid-stream"
        with psycopg.connect(database_url) as conn:
            assert conn.execute(
                "SELECT count(DISTINCT seq) FROM positions WHERE device = 'gps1'"
            ).fetchone() == (30_000,)
            assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
    finally:
        ingest.terminate()
        try:
            ingest.wait(15)
        except subprocess.TimeoutExpired:
            ingest.kill()
        print(log.read_text()[-3000:])
