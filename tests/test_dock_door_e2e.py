"""Wrong and short loads end to end, from simulated dock doors to the dock and the API.

A serial scanner on a pty and an RFID reader speaking LLRP serve two dispatch doors of one
gateway; the edge agent reads them, publishes over MQTT, ingest matches the scans to orders
inside its transaction and answers on the gateway's feedback topic; the agent shows each
verdict through its outputs. door-1 loads trip T1, door-2 trip T2.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from edge_agent import EdgeAgent, parse_gateway_config
from event_contract import Verdict
from ingest_service.api import create_app
from ingest_service.auth import ensure_admin
from ingest_service.pipeline.consumer import ConsumerConfig, IngestConsumer
from ingest_service.pipeline.stats import IngestStats
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode
from mqtt_client import BrokerAddress
from orders.codes import make_sscc, sscc_epc96
from simulators import llrp_messages as m
from simulators.llrp_reader import FakeLlrpReader
from simulators.scanner import ScannerSimConfig, ScannerSimulator
from simulators.tag_population import ScenarioConfig, TagScenario
from tests.mqtt_helpers import wait_until
from tests.test_gateway_health import running, until

PREFIX = "0614141"


def seed(url: str) -> dict[str, tuple[str, str]]:
    """Orders A (trip T1) and B (trip T2), one tagged package each: name -> (SSCC, EPC)."""
    packages = {}
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO customers (ref, name) VALUES ('C-1', 'Acme')")
        conn.execute("INSERT INTO trips (id, origin_site) VALUES ('T1', 'wh1'), ('T2', 'wh1')")
        conn.execute(
            "INSERT INTO dock_doors (site, door, trip_id) VALUES ('wh1', 'door-1', 'T1'),"
            " ('wh1', 'door-2', 'T2')"
        )
        for n, (name, trip) in enumerate((("A", "T1"), ("B", "T2")), start=1):
            (order_id,) = conn.execute(
                "INSERT INTO orders (number, customer_id, dest_address, trip_id, created_by)"
                " VALUES (%s, 1, 'x', %s, 'test') RETURNING id",
                (f"SO-{name}", trip),
            ).fetchone()
            sscc = make_sscc(PREFIX, n)
            epc = sscc_epc96(sscc, len(PREFIX))
            conn.execute(
                "INSERT INTO packages (order_id, sscc, epc, state) VALUES (%s, %s, %s, 'packed')",
                (order_id, sscc, epc),
            )
            packages[name] = (sscc, epc)
        # C is planned on T1 too, but nobody loads it: T1 leaves short.
        conn.execute(
            "INSERT INTO orders (number, customer_id, dest_address, trip_id, created_by)"
            " VALUES ('SO-C', 1, 'x', 'T1', 'test')"
        )
        conn.execute(
            "INSERT INTO packages (order_id, sscc, state) VALUES (3, %s, 'packed')",
            (make_sscc(PREFIX, 3),),
        )
    return packages


class Shown:
    """A feedback output, as a stack light would be: every verdict the dock was shown."""

    def __init__(self) -> None:
        self.verdicts: list[Verdict] = []

    def show(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)

    def about(self, code: str) -> list[str]:
        return [v.verdict.value for v in self.verdicts if v.code == code]


def gateway(scanner_pty: str, reader_port: int) -> Any:
    return parse_gateway_config({
        "site": "wh1", "gateway": f"dock-{uuid.uuid4().hex[:6]}",
        "publish": {"linger_ms": 20},
        "sources": [
            {"type": "scanner_serial", "device": "scanner-1", "port_url": scanner_pty,
             "read_point": {"door": "door-1"}, "stage": "dispatch"},
            {"type": "rfid_llrp", "device": "reader-1", "host": "127.0.0.1",
             "port": reader_port, "stage": "dispatch",
             "antennas": [{"antenna": 1, "read_point": {"door": "door-1"}},
                          {"antenna": 2, "read_point": {"door": "door-2"}}],
             "smoothing": {"window_s": 0.5, "rssi_floor_dbm": -75, "min_reads": 2}},
        ],
    })  # fmt: skip


def test_wrong_loads_at_serial_and_rfid_doors_turn_the_dock_red(
    mqtt_broker: BrokerAddress, database_url: str
) -> None:
    packages = seed(database_url)
    (a_sscc, a_epc), (b_sscc, b_epc) = packages["A"], packages["B"]
    group = f"g{uuid.uuid4().hex[:8]}"
    ingest = IngestConsumer(
        broker=mqtt_broker,
        database_url=database_url,
        config=ConsumerConfig(client_id=f"ingest-{group}", share_group=group),
        stats=IngestStats(CollectorRegistry()),
    ).start()
    shown = Shown()

    async def scenario() -> None:
        quiet = ScenarioConfig(doors=2, tags_per_minute=0.01, noise_per_s=0, seed=1)
        tags = TagScenario(quiet)
        async with (
            ScannerSimulator(ScannerSimConfig(rate_hz=0, pty=True)) as scanner,
            FakeLlrpReader(capabilities=m.Capabilities(antennas=2), scenario=tags) as reader,
        ):
            assert reader.port is not None
            agent = EdgeAgent(gateway(scanner.pty_path, reader.port), mqtt_broker)
            agent.feedback.outputs.append(shown)
            async with running(agent):
                await until(lambda: reader.inventorying, "the reader to inventory")
                # B's pallet belongs on T2, but the serial scanner at door-1 (T1) reads it.
                assert scanner.scan(f"00{b_sscc}", aim="]C1")
                await until(lambda: shown.about(f"00{b_sscc}"), "the serial wrong load")
                # A's tagged pallet through door-1 (its trip), then B's through door-1 (wrong)
                # and door-2 (right).
                t = reader.scenario_time()
                tags.carry(a_epc, 0, t + 0.2)
                tags.carry(b_epc, 0, t + 2.0)
                tags.carry(b_epc, 1, t + 4.0)
                await until(lambda: len(shown.about(b_epc)) >= 2, "both RFID loads of B")
                await until(lambda: shown.about(a_epc), "A's load")

    try:
        wait_until(lambda: ingest.stats.connected, what="ingest to connect")
        asyncio.run(scenario())
    finally:
        ingest.stop()
    assert shown.about(f"00{b_sscc}") == ["wrong_truck"]
    assert shown.about(a_epc) == ["accepted"]
    assert shown.about(b_epc) == ["wrong_truck", "accepted"]
    with psycopg.connect(database_url) as conn:
        loads = conn.execute("SELECT sscc, loaded_trip FROM packages ORDER BY sscc").fetchall()
        opened = conn.execute("SELECT kind, trip_id FROM exceptions ORDER BY id").fetchall()
    assert loads == [(a_sscc, "T1"), (b_sscc, "T2"), (make_sscc(PREFIX, 3), None)]
    assert opened == [("wrong_load", "T1"), ("wrong_load", "T1")]

    # Truck 1 leaves: A goes in transit, C's package stayed on the dock: a short load.
    with psycopg.connect(database_url) as conn:
        ensure_admin(conn, username="admin", password="admin-password-long")
    app = create_app(
        settings=Settings(secret_key="k" * 40, _env_file=None),
        database_url=database_url,
        storage_mode=StorageMode("postgresql", "test"),
    )
    with TestClient(app) as api:
        login = {"username": "admin", "password": "admin-password-long"}
        token = api.post("/api/v1/auth/login", json=login).json()["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        departed = api.post("/api/v1/trips/T1/depart")
        assert departed.status_code == 200, departed.text
        short = api.get("/api/v1/exceptions", params={"kind": "short_load"}).json()["items"]
        assert api.get("/api/v1/orders/SO-A").json()["state"] == "in_transit"
    assert [(e["kind"], e["trip_id"], e["order_number"], e["package_sscc"]) for e in short] == [
        ("short_load", "T1", "SO-C", make_sscc(PREFIX, 3))
    ]
