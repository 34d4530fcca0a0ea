"""Receiving against an ASN end to end: an inbound door, a real broker, ingest, the API.

A serial scanner on a pty serves inbound door in-1 (stage receive) of a gateway run by the
edge agent; the door is given ASN-100 over the API. Ingest reconciles each scan against the
ASN's lines inside its transaction and answers the dock; a person closes the receipt.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from edge_agent import EdgeAgent, parse_gateway_config
from event_contract import Stage
from ingest_service.api import create_app
from ingest_service.auth import ensure_admin
from ingest_service.settings import Settings
from ingest_service.storage import StorageMode
from mqtt_client import BrokerAddress
from orders.codes import make_sscc
from simulators.scanner import ScannerSimConfig, ScannerSimulator
from tests.mqtt_helpers import wait_until
from tests.test_dock_door_e2e import Shown
from tests.test_gateway_health import running, until
from tests.test_scan_matching import Feedback, consumer, rows, scan, send, verdict

PREFIX = "0614141"
GTIN_A, GTIN_B, GTIN_Z = "04012345000016", "04012345000023", "04012345000092"
P1, P2 = make_sscc(PREFIX, 501), make_sscc(PREFIX, 502)


def seed(url: str) -> None:
    """PO-1 from Supplier S-1: line 1 SKU-A (20), line 2 SKU-B (5). ASN-100 (submitted) ships
    line 1 as two pallets of 10 and 3 units of line 2. SKU-Z is on no line. Stock of SKU-A
    at wh1 starts at 7."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO products (sku, gtin, name) VALUES ('SKU-A', %s, 'Widget'),"
            " ('SKU-B', %s, 'Gadget'), ('SKU-Z', %s, 'Stray')",
            (GTIN_A, GTIN_B, GTIN_Z),
        )
        conn.execute("INSERT INTO stock VALUES ('SKU-A', 'wh1', 7)")
        conn.execute("INSERT INTO suppliers (ref, name) VALUES ('S-1', 'Supplier One')")
        conn.execute(
            "INSERT INTO purchase_orders (number, supplier_id, site, delivery_date, created_by)"
            " VALUES ('PO-1', 1, 'wh1', current_date, 'test')"
        )
        conn.execute("INSERT INTO po_lines (po_id, line_no, sku, quantity) VALUES"
                     " (1, 1, 'SKU-A', 20), (1, 2, 'SKU-B', 5)")  # fmt: skip
        for number, status in (("ASN-100", "submitted"), ("ASN-DRAFT", "draft")):
            conn.execute(
                "INSERT INTO asns (number, po_id, supplier_id, status, created_by)"
                " VALUES (%s, 1, 1, %s, 'test')",
                (number, status),
            )
        conn.execute("INSERT INTO asn_lines VALUES (1, 1, 1, 20), (1, 1, 2, 3)")
        conn.execute("INSERT INTO asn_packages VALUES (1, %s, NULL, 1, 10), (1, %s, NULL, 1, 10)",
                     (P1, P2))  # fmt: skip


@contextmanager
def api(url: str) -> Iterator[TestClient]:
    with psycopg.connect(url) as conn:
        ensure_admin(conn, username="admin", password="admin-password-long")
    app = create_app(
        settings=Settings(secret_key="k" * 40, _env_file=None),
        database_url=url,
        storage_mode=StorageMode("postgresql", "test"),
    )
    with TestClient(app) as client:
        login = {"username": "admin", "password": "admin-password-long"}
        token = client.post("/api/v1/auth/login", json=login).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def assign(client: TestClient, asn: str | None, door: str = "in-1") -> Any:
    return client.put(f"/api/v1/docks/wh1/{door}/asn", json={"asn": asn})


def inbound_gateway(scanner_pty: str) -> Any:
    return parse_gateway_config({
        "site": "wh1", "gateway": f"in-{uuid.uuid4().hex[:6]}", "publish": {"linger_ms": 20},
        "sources": [{"type": "scanner_serial", "device": "scanner-1", "port_url": scanner_pty,
                     "read_point": {"door": "in-1"}, "stage": "receive"}],
    })  # fmt: skip


def stock(url: str) -> dict[str, int]:
    return dict(rows(url, "SELECT sku, quantity FROM stock WHERE location = 'wh1'"))


def test_an_inbound_door_counts_pallets_and_units_and_closes_short(
    mqtt_broker: BrokerAddress, database_url: str
) -> None:
    seed(database_url)
    with api(database_url) as client:
        refused = assign(client, "ASN-DRAFT")
        assert refused.status_code == 409 and "draft" in refused.json()["detail"]
        assigned = assign(client, "ASN-100")
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["asn"] == "ASN-100"
    ingest = consumer(mqtt_broker, database_url, f"g{uuid.uuid4().hex[:8]}")
    shown = Shown()
    codes = [f"00{P1}", f"00{P1}", f"00{P2}", f"01{GTIN_B}", f"01{GTIN_B}", f"01{GTIN_A}",
             f"01{GTIN_Z}"]  # fmt: skip

    async def scenario() -> None:
        async with ScannerSimulator(ScannerSimConfig(rate_hz=0, pty=True)) as scanner:
            agent = EdgeAgent(inbound_gateway(scanner.pty_path), mqtt_broker)
            agent.feedback.outputs.append(shown)
            async with running(agent):
                for n, code in enumerate(codes, start=1):  # one at a time, as a person scans
                    assert scanner.scan(code, aim="]C1")
                    await until(lambda n=n: len(shown.verdicts) >= n, f"verdict {n} ({code})")

    try:
        asyncio.run(scenario())
    finally:
        ingest.stop()
    said = [(v.code, v.verdict.value) for v in shown.verdicts]
    assert said == [
        (f"00{P1}", "accepted"), (f"00{P1}", "duplicate"), (f"00{P2}", "accepted"),
        (f"01{GTIN_B}", "accepted"), (f"01{GTIN_B}", "accepted"),
        (f"01{GTIN_A}", "wrong_order"), (f"01{GTIN_Z}", "wrong_order"),
    ]  # fmt: skip
    assert shown.verdicts[5].message.startswith("over: line 1 SKU-A shipped 20, received 21")
    assert "on no line of ASN ASN-100" in shown.verdicts[6].message
    # Stock went up by exactly what the lines received; the stray unit waits for a person.
    assert stock(database_url) == {"SKU-A": 7 + 21, "SKU-B": 2}
    opened = rows(database_url, "SELECT kind, sku, asn_id FROM exceptions ORDER BY id")
    assert opened == [("over_receipt", "SKU-A", 1), ("unexpected_item", "SKU-Z", 1)]
    kinds = rows(
        database_url, "SELECT match_kind, count(*) FROM scan_outcomes GROUP BY 1 ORDER BY 1"
    )
    assert kinds == [("package", 3), ("product", 4)]

    with api(database_url) as client:
        seen = client.get("/api/v1/asns/ASN-100/receiving").json()
        assert [(x["po_line_no"], x["shipped"], x["received"], x["over"], x["short"])
                for x in seen["lines"]] == [(1, 20, 21, 1, 0), (2, 3, 2, 0, 1)]  # fmt: skip
        assert [(u["code"], u["sku"]) for u in seen["unexpected"]] == [(f"01{GTIN_Z}", "SKU-Z")]
        assert (seen["status"], seen["fully_received"], seen["doors"]) == (
            "submitted", False, ["wh1/in-1"]
        )  # fmt: skip
        closed = client.post("/api/v1/asns/ASN-100/close")
        assert closed.status_code == 200, closed.text
        receipt = client.get("/api/v1/receipts/RCV-ASN-100").json()
        assert receipt["status"] == "short" and receipt["asn"] == "ASN-100"
        assert [(x["ordered"], x["shipped"], x["received"]) for x in receipt["lines"]] == [
            (20, 20, 21), (5, 3, 2)
        ]  # fmt: skip
        assert client.get("/api/v1/asns/ASN-100/receiving").json()["doors"] == []
        assert client.get("/api/v1/receipts/RCV-NOPE").status_code == 404
    short = rows(database_url, "SELECT sku, summary FROM exceptions WHERE kind = 'short_receipt'")
    assert short == [("SKU-B", "short: ASN ASN-100 line 2 SKU-B shipped 3, received 2 (1 missing)")]
    assert rows(database_url, "SELECT status, received_at IS NOT NULL FROM asns WHERE id = 1") == [
        ("received", True)
    ]
    assert rows(database_url, "SELECT asn_id FROM dock_doors WHERE door = 'in-1'") == [(None,)]


def test_a_fully_received_asn_gets_its_receipt_and_a_redelivered_batch_changes_nothing(
    mqtt_broker: BrokerAddress, database_url: str
) -> None:
    seed(database_url)
    with api(database_url) as client:
        assert assign(client, "ASN-100").status_code == 200
    gateway = f"in-{uuid.uuid4().hex[:6]}"
    fb = Feedback(mqtt_broker, gateway)
    ingest = consumer(mqtt_broker, database_url, f"g{uuid.uuid4().hex[:8]}")
    try:
        batch = [scan(f"00{P1}", Stage.RECEIVE, door="in-1"),
                 scan(f"00{P2}", Stage.RECEIVE, door="in-1")]  # fmt: skip
        batch += [scan(f"01{GTIN_B}", Stage.RECEIVE, door="in-1") for _ in range(3)]
        send(mqtt_broker, gateway, batch)
        wait_until(lambda: len(fb.verdicts) >= 5, what="five verdicts")
        assert {v["verdict"] for v in fb.verdicts} == {"accepted"}
        before = {t: rows(database_url, f"SELECT count(*) FROM {t}")  # noqa: S608
                  for t in ("asn_receipts", "exceptions", "receipts", "scan_outcomes")}  # fmt: skip
        send(mqtt_broker, gateway, batch)  # the same events again: the broker redelivered
        elsewhere = f"01{GTIN_A}"  # then a unit at a door with no ASN: +1, as today
        send(mqtt_broker, gateway, [scan(elsewhere, Stage.RECEIVE, door="in-2")])
        assert verdict(fb, elsewhere)["verdict"] == "accepted"
        before["scan_outcomes"] = [(before["scan_outcomes"][0][0] + 1,)]  # in-2's scan
        for table, count in before.items():
            assert rows(database_url, f"SELECT count(*) FROM {table}") == count, table  # noqa: S608
        assert len(fb.verdicts) == 6
        assert stock(database_url) == {"SKU-A": 7 + 20 + 1, "SKU-B": 3}
        # The ASN stays at in-1 until closed: one more unit is over, and shows on the receipt.
        extra = scan(f"01{GTIN_B}", Stage.RECEIVE, door="in-1")
        send(mqtt_broker, gateway, [extra])
        wait_until(lambda: len(fb.verdicts) >= 7, what="the extra unit's verdict")
        assert fb.verdicts[-1]["verdict"] == "wrong_order"
    finally:
        ingest.stop()
        fb.close()
    assert stock(database_url) == {"SKU-A": 7 + 20 + 1, "SKU-B": 4}
    assert rows(database_url, "SELECT status FROM asns WHERE number = 'ASN-100'") == [("received",)]
    (number, status, lines, by), = rows(
        database_url, "SELECT number, status, lines, completed_by FROM receipts"
    )  # fmt: skip
    assert (number, status) == ("RCV-ASN-100", "complete") and by.startswith("gateway:wh1/")
    got = [(x["po_line_no"], x["shipped"], x["received"]) for x in lines]
    assert got == [(1, 20, 20), (2, 3, 4)]
    assert rows(database_url, "SELECT kind, summary FROM exceptions") == [
        ("over_receipt", "over: line 2 SKU-B shipped 3, received 4 (1 x SKU-B, ASN ASN-100)")
    ]


def test_only_a_submitted_asn_goes_to_a_door_that_loads_no_trip(database_url: str) -> None:
    seed(database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO trips (id, origin_site) VALUES ('T1', 'wh1')")
        conn.execute("INSERT INTO dock_doors (site, door, trip_id) VALUES ('wh1', 'out-1', 'T1')")
    with api(database_url) as client:
        busy = assign(client, "ASN-100", door="out-1")
        assert busy.status_code == 409 and "trip T1" in busy.json()["detail"]
        assert assign(client, "ASN-NONE").status_code == 404
        assert client.post("/api/v1/asns/ASN-DRAFT/close").status_code == 409
        assert assign(client, "ASN-100").json()["asn"] == "ASN-100"
        assert assign(client, None).json()["asn"] is None
        # Closing with nothing scanned: every line short, the receipt short, nothing received.
        closed = client.post("/api/v1/asns/ASN-100/close").json()
        assert [x["received"] for x in closed["lines"]] == [0, 0] and closed["status"] == "short"
        again = client.post("/api/v1/asns/ASN-100/close")
        assert again.status_code == 200 and again.json()["number"] == "RCV-ASN-100"
        assert assign(client, "ASN-100").status_code == 409  # received: not again
    kinds = rows(database_url, "SELECT kind, count(*) FROM exceptions GROUP BY 1")
    assert kinds == [("short_receipt", 2)]
