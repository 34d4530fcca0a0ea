"""Provisioned credentials against a real private Mosquitto with password and ACL files."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from event_contract import encode, event_topic
from ingest_service.pipeline.consumer import ConsumerConfig, IngestConsumer
from ingest_service.pipeline.stats import IngestStats
from mqtt_client import BrokerAddress, make_client, parse_mqtt_url
from simulators import synthetic
from tests.mqtt_helpers import wait_until
from tracklane.cli import app
from tracklane.embedded import EmbeddedBroker
from tracklane.gateways import (
    Principal,
    ProvisionError,
    gateway_principal,
    ingest_principal,
    provision,
    update_acl,
    verify_password,
)

NOT_AUTHORIZED = 0x87
ACCEPTED = (0x00, 0x10)  # 0x10: accepted, no matching subscribers
# A test-only user that sees every message, to show that a refused one went nowhere.
OBSERVER = Principal("observer", "# test observer", ("topic read #",))
WAIT = 10.0


@dataclass
class Peer:
    """A connected MQTT 5 client that records what the broker answers and delivers."""

    client: mqtt.Client
    received: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)
    acks: dict[int, int] = field(default_factory=dict)
    acked: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        with self.acked:
            assert self.acked.wait_for(lambda: info.mid in self.acks, WAIT), f"no PUBACK: {topic}"
            return self.acks.pop(info.mid)

    def subscribe(self, topic: str) -> int:
        """Subscribe QoS 1 and return the SUBACK's reason code."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self.acked:
            assert self.acked.wait_for(lambda: mid in self.acks, WAIT), f"no SUBACK: {topic}"
            return self.acks.pop(mid)

    def next_message(self) -> tuple[str, bytes]:
        return self.received.get(timeout=WAIT)


def connect(broker: BrokerAddress, username: str | None, password: str | None) -> Peer:
    """A peer, or AssertionError carrying the CONNACK reason code if refused."""
    address = BrokerAddress(broker.host, broker.port, username=username, password=password)
    client, props = make_client(address, f"test-cred-{uuid.uuid4().hex[:8]}")
    client.reconnect_delay_set(min_delay=30, max_delay=30)  # a refusal must not retry
    peer = Peer(client)
    connack: queue.Queue[int] = queue.Queue()

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        connack.put(reason.value)

    def on_ack(_c: Any, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        codes = reasons if isinstance(reasons, list) else [reasons]
        with peer.acked:
            peer.acks[mid] = codes[0].value
            peer.acked.notify_all()

    client.on_connect = on_connect
    client.on_publish = on_ack
    client.on_subscribe = on_ack
    client.on_message = lambda _c, _u, m: peer.received.put((m.topic, m.payload))
    client.connect(broker.host, broker.port, properties=props)
    client.loop_start()
    code = connack.get(timeout=WAIT)
    if code != 0:
        client.disconnect()
        client.loop_stop()
        raise ConnectionRefusedError(code)
    return peer


def close(peer: Peer) -> None:
    peer.client.disconnect()
    peer.client.loop_stop()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[BrokerAddress, dict[str, str]]]:
    """A broker that only provisioned users may use: gateways dock/a and dock/b, and ingest."""
    auth = tmp_path / "auth"
    passwords = {
        "a": provision(auth, gateway_principal("dock", "a")).password,
        "b": provision(auth, gateway_principal("dock", "b")).password,
        "ingest": provision(auth, ingest_principal("ingest")).password,
        "observer": provision(auth, OBSERVER).password,
    }
    broker = EmbeddedBroker(tmp_path / "broker", auth_dir=auth)
    broker.start()
    try:
        yield parse_mqtt_url(broker.url), passwords
    finally:
        broker.stop()


@pytest.fixture
def peers(secured: tuple[BrokerAddress, dict[str, str]]) -> Iterator[dict[str, Peer]]:
    broker, pw = secured
    made = {
        "a": connect(broker, "gw-dock-a", pw["a"]),
        "b": connect(broker, "gw-dock-b", pw["b"]),
        "ingest": connect(broker, "ingest", pw["ingest"]),
        "observer": connect(broker, "observer", pw["observer"]),
    }
    yield made
    for peer in made.values():
        close(peer)


def test_gateway_publishes_under_its_prefix_and_ingest_shares_the_subscription(
    peers: dict[str, Peer],
) -> None:
    ingest, gateway = peers["ingest"], peers["a"]
    for kind in ("scans", "positions", "status"):
        assert ingest.subscribe(f"$share/ingest/tracklane/v1/+/+/{kind}") == 1  # granted QoS 1
    for kind in ("scans", "positions", "status"):
        assert gateway.publish(f"tracklane/v1/dock/a/{kind}", kind.encode()) == 0
        assert ingest.next_message() == (f"tracklane/v1/dock/a/{kind}", kind.encode())
    assert gateway.publish("tracklane/state/v1/dock/a", b"online", retain=True) in ACCEPTED


@pytest.mark.parametrize(
    "topic",
    [
        "tracklane/v1/dock/b/scans",  # another gateway's events
        "tracklane/state/v1/dock/b",  # another gateway's state
        "tracklane/v1/dock/a/feedback",  # its own verdicts are ingest's to write
        "tracklane/v1/dock/a/other",
    ],
)
def test_publish_outside_its_prefix_is_refused(peers: dict[str, Peer], topic: str) -> None:
    observer, gateway = peers["observer"], peers["a"]
    assert observer.subscribe("#") == 1
    assert gateway.publish(topic, b"forged") == NOT_AUTHORIZED
    # The same client's next message arrives after anything the broker accepted before it.
    assert gateway.publish("tracklane/v1/dock/a/scans", b"marker") == 0
    assert observer.next_message() == ("tracklane/v1/dock/a/scans", b"marker")
    assert observer.received.empty()


def test_gateway_reads_its_own_feedback_only(peers: dict[str, Peer]) -> None:
    gateway, ingest = peers["a"], peers["ingest"]
    assert gateway.subscribe("tracklane/v1/dock/a/feedback") == 1
    # Mosquitto 2.0.11 grants these subscriptions, then checks read access on each
    # message it would deliver: nothing on them ever reaches the gateway.
    assert gateway.subscribe("tracklane/v1/dock/b/feedback") == 1
    assert gateway.subscribe("tracklane/v1/+/+/scans") == 1
    assert ingest.publish("tracklane/v1/dock/b/feedback", b"not yours") in ACCEPTED
    assert peers["b"].publish("tracklane/v1/dock/b/scans", b"b's scans") in ACCEPTED
    assert ingest.publish("tracklane/v1/dock/a/feedback", b"accepted") == 0
    assert gateway.next_message() == ("tracklane/v1/dock/a/feedback", b"accepted")
    assert gateway.received.empty()


def test_wrong_or_missing_password_is_refused_at_connect(
    secured: tuple[BrokerAddress, dict[str, str]],
) -> None:
    broker, pw = secured
    for username, password in [
        ("gw-dock-a", "wrong"),
        ("gw-dock-a", pw["b"]),  # another gateway's password
        ("gw-dock-zz", pw["a"]),  # not provisioned
    ]:
        with pytest.raises(ConnectionRefusedError) as refused:
            connect(broker, username, password)
        # Mosquitto 2.0.11 answers a bad login with 0x87 Not authorized, not 0x86.
        assert refused.value.args[0] == NOT_AUTHORIZED
    with pytest.raises(ConnectionRefusedError) as refused:
        connect(broker, None, None)  # anonymous
    assert refused.value.args[0] == NOT_AUTHORIZED


def test_reprovisioning_rotates_the_password(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    old = provision(auth, gateway_principal("dock", "a"))
    broker = EmbeddedBroker(tmp_path / "broker", auth_dir=auth).start()
    try:
        address = parse_mqtt_url(broker.url)
        close(connect(address, old.username, old.password))
        new = provision(auth, gateway_principal("dock", "a"))
        assert new.password != old.password and len(new.password) >= 22  # >= 128 bits
        broker.reload()
        deadline = time.monotonic() + WAIT  # SIGHUP is handled asynchronously
        with pytest.raises(ConnectionRefusedError):
            while time.monotonic() < deadline:
                close(connect(address, old.username, old.password))
                time.sleep(0.1)
        close(connect(address, new.username, new.password))
    finally:
        broker.stop()
    assert (auth / "acl").read_text().count("user gw-dock-a") == 1
    assert (auth / "passwd").stat().st_mode & 0o077 == 0


def test_usernames_that_collide_are_refused() -> None:
    acl = update_acl("", gateway_principal("dock", "a-b"))
    with pytest.raises(ProvisionError, match="already belongs to 'gateway dock/a-b'"):
        update_acl(acl, gateway_principal("dock-a", "b"))


def test_auth_dir_without_files_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="tracklane gateway provision"):
        EmbeddedBroker(tmp_path / "broker", auth_dir=tmp_path / "none").write_config()


def test_cli_provision_prints_credentials_once(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["gateway", "provision", "a", "--site", "dock", "--broker-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--broker-url", "mqtt://gw.example:1884"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert lines["username"] == "gw-dock-a"
    assert lines["mqtt_url"] == f"mqtt://gw-dock-a:{lines['password']}@gw.example:1884"
    stored = (tmp_path / "passwd").read_text().strip().split(":", 1)
    assert stored[0] == "gw-dock-a" and verify_password(lines["password"], stored[1])
    assert "topic write tracklane/v1/dock/a/scans" in (tmp_path / "acl").read_text()
    refused = runner.invoke(app, ["gateway", "provision", "a", "--broker-dir", str(tmp_path)])
    assert refused.exit_code == 2


def test_ingest_service_user_stores_a_gateways_events(
    secured: tuple[BrokerAddress, dict[str, str]], database_url: str
) -> None:
    """The real consumer, logged in as the ingest user, holds its shared subscription."""
    broker, pw = secured
    consumer = IngestConsumer(
        broker=BrokerAddress(broker.host, broker.port, username="ingest", password=pw["ingest"]),
        database_url=database_url,
        config=ConsumerConfig(client_id=f"ingest-{uuid.uuid4().hex[:8]}"),
        stats=IngestStats(CollectorRegistry()),
    )
    consumer.start()
    gateway = connect(broker, "gw-dock-a", pw["a"])
    try:
        wait_until(lambda: consumer._subscribed, timeout=WAIT, what="ingest's subscription")
        events = synthetic.positions(site="dock", gateway="a", device="gps1", count=30)
        for batch in synthetic.batches(events, site="dock", gateway="a", size=10):
            assert gateway.publish(event_topic("dock", "a", "positions"), encode(batch)) == 0
        wait_until(
            lambda: consumer.stats.snapshot()["events_stored"] == 30,
            timeout=WAIT,
            what="30 positions stored",
        )
    finally:
        close(gateway)
        consumer.stop()


def test_provisioning_next_to_a_running_broker_reloads_it(tmp_path: Path) -> None:
    """The default layout: the files sit in the embedded broker's own folder."""
    folder = tmp_path / "mosquitto"
    provision(folder, gateway_principal("dock", "a"))
    broker = EmbeddedBroker(folder, auth_dir=folder).start()
    try:
        args = ["gateway", "provision", "b", "--site", "dock", "--broker-dir", str(folder)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "the running broker reloaded them" in result.output
        password = next(
            line.removeprefix("password: ")
            for line in result.output.splitlines()
            if line.startswith("password: ")
        )
        address = parse_mqtt_url(broker.url)
        wait_until(lambda: _connects(address, "gw-dock-b", password), timeout=WAIT, what="new user")
    finally:
        broker.stop()


def _connects(address: BrokerAddress, username: str, password: str) -> bool:
    try:
        close(connect(address, username, password))
    except ConnectionRefusedError:
        return False
    return True
