"""Ingest through a database outage and a broker restart: counted, reported, nothing lost."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from event_contract import encode, event_topic
from ingest_service.pipeline.consumer import ConsumerConfig, IngestConsumer
from ingest_service.pipeline.stats import IngestStats
from ingest_service.storage.migrate import migrate
from mqtt_client import BrokerAddress, parse_mqtt_url
from simulators import synthetic
from tests.mqtt_helpers import publish_all, wait_until
from tracklane.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow


def stored(url: str) -> int:
    with psycopg.connect(url, connect_timeout=2) as conn:
        return conn.execute("SELECT count(*) FROM positions").fetchone()[0]


def consumer_for(broker: BrokerAddress, database_url: str) -> IngestConsumer:
    group = f"g{uuid.uuid4().hex[:8]}"
    return IngestConsumer(
        broker=broker,
        database_url=database_url,
        config=ConsumerConfig(client_id=f"ingest-{group}", share_group=group),
        stats=IngestStats(CollectorRegistry()),
    )


def messages(gateway: str, count: int, first_seq: int = 0) -> list[tuple[str, bytes]]:
    events = synthetic.positions(
        site="wh1", gateway=gateway, device="gps1", count=count, start_seq=first_seq
    )
    topic = event_topic("wh1", gateway, "positions")
    return [(topic, encode(b)) for b in synthetic.batches(events, site="wh1", gateway=gateway,
                                                          size=50)]  # fmt: skip


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A server of this test's own, so the test can stop and start it."""
    server = EmbeddedPostgres(tmp_path / "pg").start()  # stop() keeps the data folder
    migrate(server.url())
    yield server
    server.stop()


def test_database_outage_holds_events_and_stores_them_when_it_returns(
    own_postgres: EmbeddedPostgres, mqtt_broker: BrokerAddress
) -> None:
    url = own_postgres.url()
    consumer = consumer_for(mqtt_broker, url).start()
    try:
        wait_until(lambda: consumer.stats.connected, what="ingest to connect")
        publish_all(mqtt_broker, messages("gw-db", 100))
        wait_until(lambda: stored(url) == 100, what="the first events")

        own_postgres.stop()  # the database goes away...
        publish_all(mqtt_broker, messages("gw-db", 300, first_seq=100))
        wait_until(lambda: consumer.stats.db_errors > 0, what="the failed write to be counted")
        assert consumer.health()["pending_messages"] > 0, "held, not acknowledged"

        own_postgres.start()  # ...and comes back on the same data folder
        wait_until(lambda: stored(url) == 400, timeout=60, what="the held events")
        assert consumer.stats.snapshot()["quarantined"] == 0
        assert consumer.health()["pending_messages"] == 0
    finally:
        consumer.stop()


def test_broker_restart_loses_nothing(broker_factory, database_url: str) -> None:
    broker = broker_factory("restarting")
    broker.start()
    address = parse_mqtt_url(broker.url)
    consumer = consumer_for(address, database_url).start()
    try:
        wait_until(lambda: consumer.stats.connected, what="ingest to connect")
        publish_all(address, messages("gw-broker", 200))
        wait_until(lambda: stored(database_url) == 200, what="the first events")

        broker.stop()
        wait_until(lambda: not consumer.stats.connected, what="ingest to notice")
        broker.start()  # same port, same persistence: ingest's session is still there
        wait_until(lambda: consumer.stats.connected, timeout=40, what="ingest to reconnect")
        publish_all(address, messages("gw-broker", 300, first_seq=200))
        wait_until(lambda: stored(database_url) == 500, timeout=30, what="events after restart")
    finally:
        consumer.stop()


def test_broker_crash_after_its_save_loses_nothing_queued_for_ingest(
    broker_factory, database_url: str
) -> None:
    """Events PUBACKed while ingest is away, then the broker SIGKILLed (no final save)."""
    broker = broker_factory("crashing")
    broker.start()
    address = parse_mqtt_url(broker.url)
    consumer = consumer_for(address, database_url).start()
    wait_until(lambda: consumer.health()["subscription"] == "ok", what="the subscription")
    consumer.stop()  # away; its session and subscription stay at the broker
    publish_all(address, messages("gw-crash", 1000))
    time.sleep(2.5)  # past the broker's 1 s autosave
    broker.kill()
    broker.start()
    again = IngestConsumer(
        broker=address,
        database_url=database_url,
        config=consumer.config,  # same client id: the same session
        stats=IngestStats(CollectorRegistry()),
    ).start()
    try:
        wait_until(lambda: stored(database_url) == 1000, timeout=30, what="the queued events")
    finally:
        again.stop()


def test_a_retired_workers_share_is_drained_and_its_session_ended(
    mqtt_broker: BrokerAddress, database_url: str
) -> None:
    """Two workers share the traffic; one leaves for good; `drain` stores what it was owed."""
    group = f"g{uuid.uuid4().hex[:8]}"
    workers = [
        IngestConsumer(
            broker=mqtt_broker,
            database_url=database_url,
            config=ConsumerConfig(client_id=f"{group}-{n}", share_group=group),
            stats=IngestStats(CollectorRegistry()),
        ).start()
        for n in (1, 2)
    ]
    for worker in workers:
        wait_until(lambda w=worker: w.health()["subscription"] == "ok", what="both subscribed")
    workers[1].stop()  # retired, but its session still takes a share
    publish_all(mqtt_broker, messages("gw-share", 1000))
    wait_until(lambda: stored(database_url) >= 400, what="the live worker's share")
    time.sleep(1.0)
    held = 1000 - stored(database_url)
    assert held > 0, "the broker routed part of the traffic to the absent worker"

    drainer = IngestConsumer(
        broker=mqtt_broker,
        database_url=database_url,
        config=workers[1].config,
        stats=IngestStats(CollectorRegistry()),
    )
    assert drainer.drain(idle_s=1.5, timeout_s=60)
    assert stored(database_url) == 1000
    assert drainer.stats.snapshot()["events_stored"] == held

    # The session is gone: new traffic all goes to the remaining worker.
    publish_all(mqtt_broker, messages("gw-share", 500, first_seq=1000))
    wait_until(lambda: stored(database_url) == 1500, what="everything via the one worker")
    workers[0].stop()


def test_stop_under_a_steady_stream_finishes_promptly_and_loses_nothing(
    mqtt_broker: BrokerAddress, database_url: str
) -> None:
    consumer = consumer_for(mqtt_broker, database_url).start()
    wait_until(lambda: consumer.health()["subscription"] == "ok", what="the subscription")
    stream = messages("gw-stop", 4000)
    publisher = threading.Thread(
        target=lambda: [publish_all(mqtt_broker, stream[i : i + 4]) for i in range(0, 80, 4)]
    )
    publisher.start()
    time.sleep(0.3)
    started = time.monotonic()
    consumer.stop(timeout=10)
    took = time.monotonic() - started
    publisher.join(30)
    assert took < 5, f"stop took {took:.1f}s while messages kept coming"
    again = IngestConsumer(
        broker=mqtt_broker,
        database_url=database_url,
        config=consumer.config,
        stats=IngestStats(CollectorRegistry()),
    ).start()
    try:
        wait_until(lambda: stored(database_url) == 4000, timeout=30, what="the rest, redelivered")
    finally:
        again.stop()
