"""Ingest against a real broker and database: dedup, quarantine, and carrying on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from event_contract import encode, event_topic
from ingest_service.pipeline.consumer import ConsumerConfig, IngestConsumer
from ingest_service.pipeline.stats import IngestStats
from mqtt_client import BrokerAddress
from simulators import synthetic
from tests.mqtt_helpers import publish_all, wait_until


@pytest.fixture
def ingest(mqtt_broker: BrokerAddress, database_url: str) -> Iterator[IngestConsumer]:
    group = f"g{uuid.uuid4().hex[:8]}"  # a share group of its own: no other test's messages
    consumer = IngestConsumer(
        broker=mqtt_broker,
        database_url=database_url,
        config=ConsumerConfig(client_id=f"ingest-{group}", share_group=group),
        stats=IngestStats(CollectorRegistry()),
    )
    consumer.start()
    wait_until(lambda: consumer.stats.connected, what="ingest to connect")
    try:
        yield consumer
    finally:
        consumer.stop()


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


def quarantine_reasons(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT reason FROM quarantine ORDER BY id")]


def gateway_name() -> str:
    return f"gw-{uuid.uuid4().hex[:8]}"


def test_same_batch_twice_is_stored_once(ingest, mqtt_broker, database_url):
    gw = gateway_name()
    events = synthetic.positions(site="wh1", gateway=gw, device="gps1", count=120)
    payloads = [encode(b) for b in synthetic.batches(events, site="wh1", gateway=gw, size=50)]
    topic = event_topic("wh1", gw, "positions")
    publish_all(mqtt_broker, [(topic, p) for p in payloads] + [(topic, payloads[0])])
    wait_until(lambda: ingest.stats.snapshot()["duplicates"] == 50, what="the repeat to be seen")
    assert count(database_url, "positions") == 120
    snap = ingest.stats.snapshot()
    assert snap["events_stored"] == 120
    assert snap["quarantined"] == 0


def test_bad_messages_are_quarantined_with_reasons_and_ingest_goes_on(
    ingest, mqtt_broker, database_url
):
    gw = gateway_name()
    good = encode(next(synthetic.batches(
        synthetic.positions(site="wh1", gateway=gw, device="gps1", count=10),
        site="wh1", gateway=gw, size=10,
    )))  # fmt: skip
    doc = json.loads(good)
    other_gateway = json.dumps({**doc, "gateway": "someone-else"}).encode()
    future_schema = json.dumps({**doc, "schema_version": 99}).encode()
    topic = event_topic("wh1", gw, "positions")
    publish_all(
        mqtt_broker,
        [
            (topic, b"\x00\xffnot json"),
            (topic, other_gateway),
            (topic, future_schema),
            (topic, good),
        ],
    )
    wait_until(lambda: count(database_url, "positions") == 10, what="the good batch")
    reasons = quarantine_reasons(database_url)
    assert len(reasons) == 3
    assert reasons[0].startswith("payload is not valid JSON")
    assert "payload gateway 'someone-else' does not match topic gateway" in reasons[1]
    assert "unknown schema_version 99" in reasons[2]
    with psycopg.connect(database_url) as conn:
        raw = conn.execute("SELECT payload FROM quarantine ORDER BY id LIMIT 1").fetchone()[0]
    assert bytes(raw) == b"\x00\xffnot json", "the raw payload is kept for a person to inspect"


def test_one_bad_event_does_not_cost_its_neighbours(ingest, mqtt_broker, database_url):
    gw = gateway_name()
    batch = next(synthetic.batches(
        synthetic.positions(site="wh1", gateway=gw, device="gps1", count=5),
        site="wh1", gateway=gw, size=5,
    ))  # fmt: skip
    doc = json.loads(encode(batch))
    doc["events"][2]["lat"] = 123.0
    publish_all(mqtt_broker, [(event_topic("wh1", gw, "positions"), json.dumps(doc).encode())])
    wait_until(lambda: count(database_url, "quarantine") == 1, what="the bad event")
    assert count(database_url, "positions") == 4
    with psycopg.connect(database_url) as conn:
        reason, index = conn.execute("SELECT reason, event_index FROM quarantine").fetchone()
    assert index == 2
    assert "events[2]" in reason and "lat" in reason


def test_a_row_the_database_refuses_is_quarantined_not_retried_forever(
    ingest, mqtt_broker, database_url
):
    """A DBA's constraint stands in for any data the database will not take."""
    with psycopg.connect(database_url) as conn:
        conn.execute("ALTER TABLE scans ADD CONSTRAINT no_poison CHECK (code <> 'poison')")
    gw = gateway_name()
    scans = synthetic.scans(site="wh1", gateway=gw, device="scanner1", door="door-1", count=6)
    poisoned = json.loads(
        encode(next(synthetic.batches(scans[:3], site="wh1", gateway=gw, size=3)))
    )
    poisoned["events"][1]["code"] = "poison"
    ok = encode(next(synthetic.batches(scans[3:], site="wh1", gateway=gw, size=3)))
    topic = event_topic("wh1", gw, "scans")
    publish_all(mqtt_broker, [(topic, json.dumps(poisoned).encode()), (topic, ok)])
    wait_until(lambda: count(database_url, "quarantine") == 1, what="the refused message")
    wait_until(lambda: count(database_url, "scans") == 3, what="the good message")
    (reason,) = quarantine_reasons(database_url)
    assert reason.startswith("database refused the message")
    assert "no_poison" in reason


def test_a_message_decode_chokes_on_is_quarantined_and_its_batch_mates_stored(
    ingest, mqtt_broker, database_url
):
    """JSON nested deeper than any parser's recursion limit, among good messages."""
    gw = gateway_name()
    topic = event_topic("wh1", gw, "positions")
    events = synthetic.positions(site="wh1", gateway=gw, device="gps1", count=200)
    good = [(topic, encode(b)) for b in synthetic.batches(events, site="wh1", gateway=gw, size=20)]
    poison = b"[" * 100_000 + b"]" * 100_000
    publish_all(mqtt_broker, [*good[:5], (topic, poison), *good[5:]])
    wait_until(lambda: count(database_url, "positions") == 200, what="the good messages")
    assert quarantine_reasons(database_url) == ["payload is JSON nested too deeply to read"]
    wait_until(lambda: ingest.health()["pending_messages"] == 0, what="every message acked")
    assert ingest.health()["status"] == "ok"
