"""EPCIS 2.0 export: scans through the real matcher, milestones and ASN receipts, out of
GET /api/v1/epcis/events, every document validated against GS1's EPCIS 2.0 JSON Schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator, FormatChecker

from epcis import (
    Locations,
    MilestoneRow,
    OrderRef,
    Package,
    ReceiptRow,
    ScanRow,
    milestone_event,
    receipt_event,
    scan_event,
)
from event_contract import CodeKind, ReadPoint, ScanEvent, Stage
from ingest_service.orders.matcher import ScanMatcher
from ingest_service.storage.writer import BatchWriter
from orders.codes import make_sscc
from tests.test_api_exceptions import login
from tests.test_api_orders import make_client, order

API = "/api/v1/epcis/events"
SCHEMA = json.loads((Path(__file__).parent / "data/epcis/EPCISDocument.schema.json").read_text())
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PREFIX = "0614141"
# jsonschema checks "uri" and "date-time" only with optional packages: check them here.
FORMATS = FormatChecker()
FORMATS.checks("uri")(
    lambda v: not isinstance(v, str) or bool(re.match(r"^[A-Za-z][\w+.-]*:\S+$", v))
)
FORMATS.checks("date-time")(
    lambda v: (
        not isinstance(v, str)
        or bool(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", v))
    )
)
VALIDATOR = Draft7Validator(SCHEMA, format_checker=FORMATS)
Draft7Validator.check_schema(SCHEMA)


def valid(doc: dict[str, Any]) -> dict[str, Any]:
    """The document, after checking it and each of its events as a standalone event."""
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    assert not errors, errors
    for event in doc["epcisBody"]["eventList"]:
        errors = [e.message for e in VALIDATOR.iter_errors({"@context": doc["@context"], **event})]
        assert not errors, (event, errors)
    return doc


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["eventID"]: e for e in doc["epcisBody"]["eventList"]}


def sscc_uri(serial: int) -> str:
    return f"urn:epc:id:sscc:{PREFIX}.0{serial:09d}"


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    c = make_client(database_url)
    yield c
    c.__exit__(None, None, None)


def store_scans(url: str, scans: list[ScanEvent]) -> None:
    """As ingest stores a batch: COPY, then the matcher in the same transaction."""
    with psycopg.connect(url) as conn:
        BatchWriter(conn, matcher=ScanMatcher()).write([("wh1", "gw-1", s) for s in scans])


def scan(n: int, code: str, stage: Stage, kind: str = "barcode", **where: str) -> ScanEvent:
    at = T0 + timedelta(minutes=n)
    symbology = "gs1-128" if kind == "barcode" else "epc-96"
    return ScanEvent(event_id=uuid4(), device="reader-1", seq=n, device_time=at, received_at=at,
                     code=code, code_kind=CodeKind(kind), symbology=symbology, stage=stage,
                     read_point=ReadPoint(site="wh1", **where))  # fmt: skip


@pytest.fixture
def warehouse(client: TestClient, database_url: str) -> dict[str, Any]:
    """SO-1 (two tagged packages, trip T1) packed and loaded at door-1, a product picked, a
    refused load of SO-2; SO-1 departed, arrived and delivered; ASN-1 received."""
    for body in (order("SO-1", qty=1, packages=2, tagged=True, trip="T1"),
                 order("SO-2", qty=1, trip="T2")):  # fmt: skip
        assert client.post("/api/v1/orders", json=body).status_code == 201
    p1, p2 = client.get("/api/v1/orders/SO-1").json()["packages"]
    (q1,) = client.get("/api/v1/orders/SO-2").json()["packages"]
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO dock_doors (site, door, trip_id) VALUES ('wh1', 'door-1', 'T1')")
        conn.execute(
            "INSERT INTO products (sku, gtin, name) VALUES ('SKU-T', '80614141123458', 'Tagged')"
        )
    scans = {
        "pack": scan(1, f"00{p1['sscc']}", Stage.PACK, station="pack-1"),
        "load_rfid": scan(2, p1["epc"], Stage.DISPATCH, kind="epc", door="door-1"),
        "load_barcode": scan(3, f"00{p2['sscc']}", Stage.DISPATCH, door="door-1"),
        "wrong_truck": scan(4, f"00{q1['sscc']}", Stage.DISPATCH, door="door-1"),
        "product": scan(5, "0180614141123458", Stage.PICK, station="pick-1"),
    }
    store_scans(database_url, list(scans.values()))
    with psycopg.connect(database_url) as conn:
        for n, state in enumerate(("in_transit", "arrived", "delivered"), start=10):
            conn.execute(
                "INSERT INTO order_events (order_id, at, kind, to_state, actor)"
                " SELECT id, %s, 'state', %s, 'rule:test' FROM orders WHERE number = 'SO-1'",
                (T0 + timedelta(minutes=n), state),
            )
        conn.execute(
            "INSERT INTO deliveries (order_id, delivered_at, lat, lon, confirmed_by)"
            " SELECT id, %s, 52.51, 13.41, 'driver-1' FROM orders WHERE number = 'SO-1'",
            (T0 + timedelta(minutes=12),),
        )
        receipts = receive_asn(conn)
    return {"scans": scans, "receipts": receipts, "ssccs": [p1["sscc"], p2["sscc"]]}


def receive_asn(conn: psycopg.Connection) -> dict[str, UUID]:
    conn.execute("INSERT INTO suppliers (ref, name) VALUES ('SUP-1', 'Supplier')")
    conn.execute(
        "INSERT INTO purchase_orders (number, supplier_id, site, delivery_date, created_by)"
        " VALUES ('PO-1', 1, 'wh1', '2026-03-02', 'test')"
    )
    conn.execute("INSERT INTO po_lines VALUES (1, 1, 'SKU-A', 'material', 7, 1)")
    conn.execute(
        "INSERT INTO asns (number, po_id, supplier_id, status, created_by)"
        " VALUES ('ASN-1', 1, 1, 'submitted', 'test')"
    )
    conn.execute("INSERT INTO asn_packages VALUES (1, %s, NULL, 1, 5)", (make_sscc(PREFIX, 900),))
    ids = {"pallet": uuid4(), "loose": uuid4(), "unexpected": uuid4()}
    for n, (name, sscc, sku, qty, outcome) in enumerate(
        (
            ("pallet", make_sscc(PREFIX, 900), "SKU-A", 5, "expected"),
            ("loose", None, "SKU-A", 2, "expected"),
            ("unexpected", None, "SKU-B", 1, "unexpected"),
        )
    ):
        conn.execute(
            "INSERT INTO asn_receipts (event_id, asn_id, at, site, door, po_line_no, sku, sscc,"
            " quantity, outcome, actor) VALUES (%s, 1, %s, 'wh1', 'in-1', 1, %s, %s, %s, %s, 't')",
            (ids[name], T0 + timedelta(minutes=20 + n), sku, sscc, qty, outcome),
        )
    return ids


def test_scans_loads_milestones_and_receipts_are_valid_epcis(
    client: TestClient, warehouse: dict[str, Any]
) -> None:
    r = client.get(API)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/ld+json")
    doc = valid(r.json())
    assert doc["@context"] == ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"]
    assert (doc["type"], doc["schemaVersion"]) == ("EPCISDocument", "2.0")
    events, s = by_id(doc), warehouse["scans"]
    times = [e["eventTime"] for e in doc["epcisBody"]["eventList"]]
    assert times == sorted(times) and len(times) == 9  # 4 scans, 3 milestones, 2 receipts
    so1 = [{"type": "urn:tracklane:btt:so", "bizTransaction": "urn:tracklane:so:SO-1"}]

    pack = events[f"urn:uuid:{s['pack'].event_id}"]
    assert (pack["type"], pack["action"], pack["bizStep"]) == ("ObjectEvent", "OBSERVE", "packing")
    assert warehouse["ssccs"] == [make_sscc(PREFIX, 0), make_sscc(PREFIX, 1)]
    assert pack["epcList"] == [sscc_uri(0)] and pack["disposition"] == "in_progress"
    assert pack["readPoint"] == {"id": "urn:tracklane:site:wh1:station:pack-1"}
    assert pack["bizLocation"] == {"id": "urn:tracklane:site:wh1"}
    assert pack["eventTime"] == "2026-03-02T08:01:00Z" and pack["eventTimeZoneOffset"] == "+00:00"
    assert pack["bizTransactionList"] == so1

    for name, serial in (("load_rfid", 0), ("load_barcode", 1)):
        load = events[f"urn:uuid:{s[name].event_id}"]
        assert (load["type"], load["action"], load["bizStep"]) == (
            "AggregationEvent",
            "ADD",
            "loading",
        )
        assert load["parentID"] == "urn:tracklane:trip:T1" and load["childEPCs"] == [
            sscc_uri(serial)
        ]
        assert load["readPoint"] == {"id": "urn:tracklane:site:wh1:door:door-1"}
    assert f"urn:uuid:{s['wrong_truck'].event_id}" not in events  # refused: it did not happen

    product = events[f"urn:uuid:{s['product'].event_id}"]
    assert product["bizStep"] == "picking" and "epcList" not in product
    pattern = "urn:epc:idpat:sgtin:0614141.812345.*"  # indicator 8, item reference 12345
    assert product["quantityList"] == [{"epcClass": pattern, "quantity": 1}]

    milestones = [
        e for e in events.values() if e["bizStep"] in ("departing", "arriving", "accepting")
    ]
    assert [(e["bizStep"], e.get("disposition")) for e in milestones] == [
        ("departing", "in_transit"), ("arriving", "in_transit"), ("accepting", None)
    ]  # fmt: skip
    for e in milestones:
        assert e["epcList"] == [sscc_uri(0), sscc_uri(1)] and e["bizTransactionList"] == so1
    assert milestones[0]["readPoint"] == {"id": "urn:tracklane:site:wh1"}
    assert milestones[1]["readPoint"] == {"id": "geo:52.500000,13.400000"}  # the destination
    assert milestones[2]["readPoint"] == {"id": "geo:52.510000,13.410000"}  # proof of delivery

    ids = warehouse["receipts"]
    pallet = events[f"urn:uuid:{ids['pallet']}"]
    assert (pallet["type"], pallet["action"]) == ("AggregationEvent", "OBSERVE")
    assert pallet["bizStep"] == "receiving" and pallet["disposition"] == "in_progress"
    assert pallet["parentID"] == sscc_uri(900)
    widget = "https://id.gs1.org/01/04012345000016"  # prefix not ours: a Digital Link
    assert pallet["childQuantityList"] == [{"epcClass": widget, "quantity": 5}]
    assert pallet["bizTransactionList"] == [
        {"type": "po", "bizTransaction": "urn:tracklane:po:PO-1"},
        {"type": "desadv", "bizTransaction": "urn:tracklane:asn:ASN-1"},
    ]
    assert pallet["readPoint"] == {"id": "urn:tracklane:site:wh1:door:in-1"}
    loose = events[f"urn:uuid:{ids['loose']}"]
    assert loose["type"] == "ObjectEvent" and loose["quantityList"][0]["quantity"] == 2
    assert f"urn:uuid:{ids['unexpected']}" not in events  # on no line of the ASN


def test_filters_pages_and_refusals(client: TestClient, warehouse: dict[str, Any]) -> None:
    def ids(**params: object) -> list[str]:
        r = client.get(API, params=params)
        assert r.status_code == 200, r.text
        return [e["eventID"] for e in valid(r.json())["epcisBody"]["eventList"]]

    everything = ids()
    assert len(ids(order="SO-1")) == 6 and len(ids(asn="ASN-1")) == 2
    window = ids(**{"from": "2026-03-02T08:02:00Z", "to": "2026-03-02T09:04:00+01:00"})
    assert window == everything[1:3]  # 08:02 and 08:03 UTC; 'to' is exclusive
    # Pages of two: every event exactly once, in order, the last page has no Link.
    seen, url, pages = [], f"{API}?limit=2", 0
    while url:
        r = client.get(url)
        seen += [e["eventID"] for e in valid(r.json())["epcisBody"]["eventList"]]
        link = r.headers.get("link")
        url = re.match(r'<http://[^/]+([^>]+)>; rel="next"', link).group(1) if link else None
        pages += 1
    assert seen == everything and pages == 5
    for params, message in (
        ({"from": "2026-03-03T00:00:00Z", "to": "2026-03-02T00:00:00Z"}, "must be after"),
        ({"order": "SO-1", "asn": "ASN-1"}, "not both"),
        ({"order": "SO-9"}, "no order SO-9"),
        ({"asn": "ASN-9"}, "no ASN ASN-9"),
        ({"nextPageToken": "forged"}, "nextPageToken"),
    ):
        r = client.get(API, params=params)
        assert r.status_code == 422 and message in r.json()["detail"], r.text
    for params in ({"limit": 0}, {"limit": 5001}, {"from": "2026-03-02T08:00:00"}):
        assert client.get(API, params=params).status_code == 422  # no zone: ambiguous


def test_only_office_roles_read_events(client: TestClient) -> None:
    for role in ("viewer", "dispatcher"):
        assert client.get(API, headers=login(client, role)).status_code == 200
    for role in ("dock", "driver", "supplier"):
        assert client.get(API, headers=login(client, role)).status_code == 403
    assert client.get(API, headers={"Authorization": ""}).status_code == 401


def test_known_glns_make_sglns_and_unknown_prefixes_digital_links() -> None:
    where = Locations(company_prefixes=(PREFIX,), site_glns={"wh1": "0614141000012"})
    row = ScanRow(event_id=uuid4(), time=T0, recorded_at=None, site="wh1", door="door-1",
                  station=None, stage="pack", code="x", code_kind="barcode",
                  packages=(Package("040123450000000016"),),
                  order=OrderRef("R-1", "return"))  # fmt: skip
    event = scan_event(row, where)
    assert event["readPoint"] == {"id": "urn:epc:id:sgln:0614141.00001.door-1"}
    assert event["bizLocation"] == {"id": "urn:epc:id:sgln:0614141.00001.0"}
    assert event["epcList"] == ["https://id.gs1.org/00/040123450000000016"]  # prefix unknown
    assert event["bizTransactionList"] == [
        {"type": "rma", "bizTransaction": "urn:tracklane:so:R-1"}
    ]
    # A tagged item read by RFID is that instance (SGTIN), not a quantity of its class.
    item = replace(row, code="3074257BF7194E4000001A85", code_kind="epc", packages=(),
                   gtin="80614141123458", order=None)  # fmt: skip
    tagged = scan_event(item, where)
    assert tagged["epcList"] == ["urn:epc:id:sgtin:0614141.812345.6789"]
    # A received case of a product without a GTIN: the case itself, seen at the door.
    case = ReceiptRow(event_id=uuid4(), time=T0, site="wh1", door="in-1", asn="ASN-2",
                      po="PO-2", quantity=3, sscc=make_sscc(PREFIX, 901))  # fmt: skip
    received = receipt_event(case, where)
    assert received is not None and received["type"] == "ObjectEvent"
    assert received["epcList"] == [sscc_uri(901)]
    assert receipt_event(replace(case, sscc=None), where) is None  # nothing to name
    gone = MilestoneRow(id=7, time=T0, order=OrderRef("SO-7"), state="delivered", site="wh1",
                        packages=(Package(make_sscc(PREFIX, 3)),))  # fmt: skip
    delivered = milestone_event(gone, Locations((PREFIX,), party_gln="0614141000005"))
    assert "readPoint" not in delivered  # no place known: none invented
    assert delivered["bizTransactionList"][0]["bizTransaction"] == (
        "urn:epcglobal:cbv:bt:0614141000005:SO-7"
    )
    assert delivered["eventID"] == milestone_event(gone, where)["eventID"]  # stable
    doc = {"@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
           "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-03-02T08:00:00Z",
           "epcisBody": {"eventList": [event, tagged, received, delivered]}}  # fmt: skip
    valid(doc)
    # The schema does bite: a made-up business step, or an event without its time, fails.
    for broken in ({**event, "bizStep": "teleporting"}, {**delivered, "eventTime": None}):
        bad = {**doc, "epcisBody": {"eventList": [broken]}}
        assert list(VALIDATOR.iter_errors(bad)), broken
