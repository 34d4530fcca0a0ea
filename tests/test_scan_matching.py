"""Scans matched to orders end to end: gateway batch → broker → ingest → order → verdict.

A real broker and database; scans are published as a gateway publishes them and verdicts are
read from the gateway's feedback topic, as the gateway reads them.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from event_contract import (
    CodeKind,
    ReadPoint,
    ScanEvent,
    Stage,
    encode,
    event_topic,
    feedback_topic,
    new_event_id,
)
from ingest_service.pipeline.consumer import ConsumerConfig, IngestConsumer
from ingest_service.pipeline.stats import IngestStats
from mqtt_client import BrokerAddress, make_client
from orders.codes import make_sscc, sscc_epc96
from simulators import synthetic
from tests.mqtt_helpers import publish_all, wait_until

SITE = "wh1"
PREFIX = "0614141"


class Feedback:
    """The gateway's side of the feedback topic: every verdict it receives."""

    def __init__(self, broker: BrokerAddress, gateway: str) -> None:
        self.verdicts: list[dict] = []
        self._lock = threading.Lock()
        self.client, props = make_client(broker, f"fb-{uuid.uuid4().hex[:8]}")
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(broker.host, broker.port, properties=props)
        self.client.loop_start()
        self.client.subscribe(feedback_topic(SITE, gateway), qos=1)
        assert subscribed.wait(10)

    def _on_message(self, _c, _u, msg) -> None:
        with self._lock:
            self.verdicts.append(json.loads(msg.payload))

    def for_code(self, code: str) -> dict | None:
        with self._lock:
            return next((v for v in self.verdicts if v["code"] == code), None)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def consumer(broker: BrokerAddress, url: str, group: str, n: int = 0) -> IngestConsumer:
    c = IngestConsumer(
        broker=broker,
        database_url=url,
        config=ConsumerConfig(client_id=f"{group}-{n}", share_group=group),
        stats=IngestStats(CollectorRegistry()),
    )
    c.start()
    wait_until(lambda: c.stats.connected, what="ingest to connect")
    return c


@pytest.fixture
def warehouse(database_url: str) -> str:
    """Orders SO-1 (2 packages, trip T1), SO-2 (1 package, trip T2), SO-3 (cancelled, T1);
    door-1 loads trip T1 on truck-1."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO customers (ref, name) VALUES ('C-1', 'Acme')")
        conn.execute(
            "INSERT INTO products (sku, gtin, name) VALUES ('SKU-A', '04012345000016', 'Widget')"
        )
        conn.execute("INSERT INTO stock VALUES ('SKU-A', 'wh1', 100)")
        conn.execute("INSERT INTO vehicles (id, name) VALUES ('truck-1', 'Truck 1')")
        conn.execute(
            "INSERT INTO trips (id, vehicle_id, origin_site) VALUES ('T1', 'truck-1', 'wh1'),"
            " ('T2', NULL, 'wh1')"
        )
        conn.execute("INSERT INTO dock_doors (site, door, trip_id) VALUES ('wh1', 'door-1', 'T1')")
        serial = 1
        for number, trip, packages, state in (
            ("SO-1", "T1", 2, "created"),
            ("SO-2", "T2", 1, "created"),
            ("SO-3", "T1", 1, "cancelled"),
        ):
            (order_id,) = conn.execute(
                "INSERT INTO orders (number, customer_id, state, dest_address, trip_id,"
                " created_by) VALUES (%s, 1, %s, 'x', %s, 'test') RETURNING id",
                (number, state, trip),
            ).fetchone()
            conn.execute("INSERT INTO order_lines VALUES (%s, 1, 'SKU-A', 3, 1)", (order_id,))
            for _ in range(packages):
                sscc = make_sscc(PREFIX, serial)
                conn.execute(
                    "INSERT INTO packages (order_id, sscc, epc) VALUES (%s, %s, %s)",
                    (order_id, sscc, sscc_epc96(sscc, len(PREFIX))),
                )
                serial += 1
    return database_url


def sscc(n: int) -> str:
    return make_sscc(PREFIX, n)


def scan(
    code: str,
    stage: Stage,
    *,
    door: str | None = None,
    station: str | None = None,
    kind: CodeKind = CodeKind.BARCODE,
    symbology: str | None = "gs1-128",
) -> ScanEvent:
    now = datetime.now(UTC)
    return ScanEvent(
        event_id=new_event_id(), device="scanner-1", seq=int(now.timestamp() * 1e6),
        device_time=now, received_at=now, code=code, code_kind=kind, symbology=symbology,
        read_point=ReadPoint(site=SITE, door=door, station=station), stage=stage,
    )  # fmt: skip


def send(broker: BrokerAddress, gateway: str, events: list[ScanEvent]) -> None:
    batches = synthetic.batches(events, site=SITE, gateway=gateway, size=len(events))
    publish_all(broker, [(event_topic(SITE, gateway, "scans"), encode(b)) for b in batches])


@pytest.fixture
def dock(mqtt_broker: BrokerAddress, warehouse: str) -> Iterator[tuple[str, Feedback]]:
    gateway = f"dock-{uuid.uuid4().hex[:6]}"
    fb = Feedback(mqtt_broker, gateway)
    ingest = consumer(mqtt_broker, warehouse, f"g{uuid.uuid4().hex[:8]}")
    try:
        yield gateway, fb
    finally:
        ingest.stop()
        fb.close()


def rows(url: str, query: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def verdict(fb: Feedback, code: str) -> dict:
    return wait_until(lambda: fb.for_code(code), timeout=10, what=f"a verdict on {code}")


def test_packing_and_loading_move_packages_and_roll_up_to_the_order(
    dock, mqtt_broker, warehouse
) -> None:
    gateway, fb = dock
    a, b = f"00{sscc(1)}", f"00{sscc(2)}"
    send(mqtt_broker, gateway, [scan(a, Stage.PACK, station="pack-1")])
    assert verdict(fb, a)["verdict"] == "accepted"
    assert rows(warehouse, "SELECT state FROM orders WHERE number = 'SO-1'") == [("picking",)]
    send(mqtt_broker, gateway, [scan(b, Stage.PACK, station="pack-1")])
    assert verdict(fb, b)["order_ref"] == "SO-1"
    assert rows(warehouse, "SELECT state FROM orders WHERE number = 'SO-1'") == [("packed",)]
    # Loading at door-1 (trip T1): the second package by its RFID tag.
    epc = sscc_epc96(sscc(2), len(PREFIX))
    loads = [
        scan(a, Stage.DISPATCH, door="door-1"),
        scan(epc, Stage.DISPATCH, door="door-1", kind=CodeKind.EPC, symbology="sscc-96"),
    ]
    send(mqtt_broker, gateway, loads)
    assert verdict(fb, epc)["verdict"] == "accepted"
    wait_until(
        lambda: rows(warehouse, "SELECT state FROM orders WHERE number = 'SO-1'") == [("loaded",)],
        what="SO-1 to be loaded",
    )
    assert rows(warehouse, "SELECT DISTINCT loaded_trip FROM packages WHERE order_id = 1") == [
        ("T1",)
    ]
    history = rows(
        warehouse,
        "SELECT kind, from_state, to_state, evidence_event_id IS NOT NULL, actor"
        " FROM order_events WHERE order_id = 1 AND kind = 'state' ORDER BY id",
    )
    actor = f"gateway:{SITE}/{gateway}/scanner-1"
    assert history == [
        ("state", "created", "picking", True, actor),
        ("state", "picking", "packed", True, actor),
        ("state", "packed", "loaded", True, actor),
    ]
    # Packed means picked: the order's lines left the shelf once.
    assert rows(warehouse, "SELECT quantity FROM stock WHERE sku = 'SKU-A'") == [(97,)]


def test_wrong_loads_are_refused_at_once_and_opened_as_exceptions(
    dock, mqtt_broker, warehouse
) -> None:
    gateway, fb = dock
    other_trip, cancelled = f"00{sscc(3)}", f"00{sscc(4)}"
    send(mqtt_broker, gateway, [scan(other_trip, Stage.DISPATCH, door="door-1"),
                                scan(cancelled, Stage.DISPATCH, door="door-1")])  # fmt: skip
    wrong = verdict(fb, other_trip)
    assert wrong["verdict"] == "wrong_truck" and "T2" in wrong["message"]
    assert verdict(fb, cancelled)["verdict"] == "order_cancelled"
    opened = rows(
        warehouse,
        "SELECT kind, trip_id, vehicle_id, status FROM exceptions ORDER BY order_id",
    )
    assert opened == [("wrong_load", "T1", "truck-1", "open")] * 2
    assert rows(warehouse, "SELECT count(*) FROM packages WHERE loaded_trip IS NOT NULL") == [(0,)]


def test_unknown_and_invalid_codes_are_kept_for_a_person_and_answered(
    dock, mqtt_broker, warehouse
) -> None:
    gateway, fb = dock
    unknown = "ZZ-NOT-OURS"
    bad = f"00{sscc(1)[:-1]}{(int(sscc(1)[-1]) + 1) % 10}"  # a wrong check digit
    send(mqtt_broker, gateway, [scan(unknown, Stage.PACK, station="pack-1", symbology=None),
                                scan(bad, Stage.PACK, station="pack-1")])  # fmt: skip
    assert verdict(fb, unknown)["verdict"] == "unknown_code"
    assert verdict(fb, bad)["verdict"] == "bad_check_digit"
    kept = rows(warehouse, "SELECT code, status FROM unmatched_scans ORDER BY code")
    assert kept == sorted([(unknown, "open"), (bad, "open")])
    assert rows(warehouse, "SELECT state FROM packages WHERE id = 1") == [("created",)]


def test_a_late_scan_never_moves_a_package_back_and_a_resent_one_counts_once(
    dock, mqtt_broker, warehouse
) -> None:
    gateway, fb = dock
    code = f"00{sscc(3)}"  # SO-2, one package, trip T2
    with psycopg.connect(warehouse) as conn:
        conn.execute("UPDATE dock_doors SET trip_id = 'T2' WHERE door = 'door-1'")
    load = scan(code, Stage.DISPATCH, door="door-1")
    send(mqtt_broker, gateway, [load])
    verdict(fb, code)
    late_pack = scan(code, Stage.PACK, station="pack-1")
    send(mqtt_broker, gateway, [late_pack, load])  # a late pack scan, and the load again
    wait_until(lambda: len(fb.verdicts) >= 2, what="the late scan's verdict")
    assert rows(warehouse, "SELECT state FROM orders WHERE number = 'SO-2'") == [("loaded",)]
    assert rows(warehouse, "SELECT state FROM packages WHERE sscc = %s", sscc(3)) == [("loaded",)]
    loaded_events = rows(warehouse, "SELECT count(*) FROM order_events WHERE kind = 'loaded'")
    assert loaded_events == [(1,)]
    assert rows(warehouse, "SELECT count(*) FROM scan_outcomes") == [(2,)]


def test_two_workers_scanning_one_order_at_once_leave_it_consistent(mqtt_broker, warehouse) -> None:
    """Ten packages of one order packed through two ingest workers sharing the subscription:
    every package packed once, the order packed once, nothing lost or doubled."""
    with psycopg.connect(warehouse) as conn:
        (order_id,) = conn.execute(
            "INSERT INTO orders (number, customer_id, dest_address, created_by)"
            " VALUES ('SO-BIG', 1, 'x', 'test') RETURNING id"
        ).fetchone()
        codes = [f"00{sscc(100 + i)}" for i in range(10)]
        for code in codes:
            conn.execute(
                "INSERT INTO packages (order_id, sscc) VALUES (%s, %s)", (order_id, code[2:])
            )
    group = f"g{uuid.uuid4().hex[:8]}"
    workers = [consumer(mqtt_broker, warehouse, group, n) for n in range(2)]
    try:
        gateways = [f"pack-{n}-{uuid.uuid4().hex[:4]}" for n in range(5)]
        messages = []
        for i, code in enumerate(codes):  # one message per scan, spread over five gateways
            gw = gateways[i % 5]
            batch = next(synthetic.batches([scan(code, Stage.PACK, station=gw)], site=SITE,
                                           gateway=gw, size=1))  # fmt: skip
            messages.append((event_topic(SITE, gw, "scans"), encode(batch)))
        publish_all(mqtt_broker, messages)
        wait_until(
            lambda: rows(warehouse, "SELECT count(*) FROM scan_outcomes") == [(10,)],
            what="all ten scans to be matched",
        )
    finally:
        for w in workers:
            w.stop()
    assert rows(warehouse, "SELECT state FROM orders WHERE id = %s", order_id) == [("packed",)]
    per_package = rows(
        warehouse,
        "SELECT count(*) FROM order_events WHERE order_id = %s AND kind = 'package_state'"
        " GROUP BY package_id",
        order_id,
    )
    assert per_package == [(1,)] * 10
    moves = rows(
        warehouse,
        "SELECT from_state, to_state FROM order_events WHERE order_id = %s AND kind = 'state'"
        " ORDER BY id",
        order_id,
    )
    assert moves == [("created", "picking"), ("picking", "packed")]


def test_order_labels_and_product_codes_match_too(dock, mqtt_broker, warehouse) -> None:
    """The order's own label at a pick station starts picking; a GTIN (AI 01, EAN-13, or an
    SGTIN tag) names a product: received goods add to stock, and elsewhere it is refused."""
    gateway, fb = dock
    label = "SO-2"
    receipt = "0104012345000016"  # AI (01) GTIN-14 of SKU-A
    ean = "4012345000016"  # the same product as EAN-13
    sgtin = "3034257BF7194E4000001A85"  # an SGTIN-96 tag of another product: unknown
    send(
        mqtt_broker,
        gateway,
        [
            scan(label, Stage.PICK, station="pick-1", symbology=None),
            scan(receipt, Stage.RECEIVE, station="in-1"),
            scan(ean, Stage.DISPATCH, door="door-1", symbology="ean-13"),
            scan(sgtin, Stage.RECEIVE, station="in-1", kind=CodeKind.EPC, symbology="sgtin-96"),
        ],
    )
    assert verdict(fb, label)["verdict"] == "accepted"
    assert rows(warehouse, "SELECT state FROM orders WHERE number = 'SO-2'") == [("picking",)]
    assert verdict(fb, receipt)["verdict"] == "accepted"
    wrong_place = verdict(fb, ean)
    assert wrong_place["verdict"] == "invalid_code" and "SSCC" in wrong_place["message"]
    assert verdict(fb, sgtin)["verdict"] == "unknown_code"
    assert rows(warehouse, "SELECT quantity FROM stock WHERE sku = 'SKU-A'") == [(101,)]
    kinds = dict(rows(warehouse, "SELECT match_kind, count(*) FROM scan_outcomes GROUP BY 1"))
    assert kinds == {"order": 1, "product": 2, "unmatched": 1}


def test_a_pick_that_takes_stock_to_its_reorder_point_opens_low_stock(
    dock, mqtt_broker, warehouse
) -> None:
    gateway, fb = dock
    with psycopg.connect(warehouse) as conn:
        conn.execute("UPDATE products SET low_stock_threshold = 98 WHERE sku = 'SKU-A'")
    codes = [f"00{sscc(1)}", f"00{sscc(2)}"]  # both packages of SO-1: the order is picked
    send(mqtt_broker, gateway, [scan(c, Stage.PACK, station="pack-1") for c in codes])
    for code in codes:
        verdict(fb, code)
    assert rows(warehouse, "SELECT quantity FROM stock WHERE sku = 'SKU-A'") == [(97,)]
    opened = rows(warehouse, "SELECT kind, sku, summary FROM exceptions")
    assert [(k, s) for k, s, _ in opened] == [("low_stock", "SKU-A")]
    assert "reorder" in opened[0][2]
