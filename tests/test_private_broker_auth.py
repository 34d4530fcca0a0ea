"""The private broker as `tracklane serve` and `tracklane demo` start it (runtime.services):
only provisioned users get in, and each gateway only under its own topics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from event_contract import encode, event_topic
from ingest_service.settings import Settings
from ingest_service.storage.mode import StorageMode
from mqtt_client import BrokerAddress, parse_mqtt_url
from simulators import synthetic
from tests.mqtt_helpers import wait_until
from tests.test_gateway_credentials import NOT_AUTHORIZED, WAIT, Peer, close, connect
from tracklane import runtime
from tracklane.cli import app
from tracklane.demo import demo_gateways, gateway_brokers, provision_gateways
from tracklane.serve import ingest_running


def _settings(data_dir: Path, database_url: str, mqtt_url: str | None = None) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, mqtt_url=mqtt_url, _env_file=None)


def _refusal(broker: BrokerAddress, username: str | None, password: str | None) -> int:
    with pytest.raises(ConnectionRefusedError) as refused:
        connect(broker, username, password)
    return int(refused.value.args[0])


@pytest.fixture
def demo_setup(
    tmp_path: Path, database_url: str
) -> Iterator[tuple[runtime.Services, dict[tuple[str, str], BrokerAddress]]]:
    """The private broker with the demo's gateways provisioned, as `run_demo` does it."""
    settings = _settings(tmp_path / "data", database_url)
    gateways = demo_gateways(settings.data_dir)
    logins = provision_gateways(settings, gateways)
    with runtime.services(settings) as svc:
        yield svc, gateway_brokers(svc, gateways, logins)


def test_ingest_logs_in_and_everyone_else_is_refused(
    demo_setup: tuple[runtime.Services, dict[tuple[str, str], BrokerAddress]],
) -> None:
    svc, _ = demo_setup
    assert svc.embedded_broker and svc.auth_dir is not None
    ingest = parse_mqtt_url(svc.mqtt_url)
    assert ingest.username == runtime.INGEST_USERNAME and ingest.password
    assert "@" not in svc.broker_url, "the URL printed in banners carries no password"
    close(connect(ingest, ingest.username, ingest.password))

    broker = parse_mqtt_url(svc.broker_url)
    assert _refusal(broker, None, None) == NOT_AUTHORIZED  # anonymous
    assert _refusal(broker, "gw-wh1-dock-zz", ingest.password) == NOT_AUTHORIZED
    assert _refusal(broker, ingest.username, "not-the-password") == NOT_AUTHORIZED

    passwd = svc.auth_dir / "passwd"
    assert passwd.stat().st_mode & 0o077 == 0
    # The ingest password is kept in memory only: no file in the data folder holds it.
    for path in svc.auth_dir.parent.rglob("*"):
        if path.is_file():
            assert ingest.password.encode() not in path.read_bytes(), path


def test_a_demo_gateway_is_refused_under_another_gateways_topic(
    demo_setup: tuple[runtime.Services, dict[tuple[str, str], BrokerAddress]],
) -> None:
    svc, brokers = demo_setup
    assert set(brokers) == {
        ("wh1", "dock-a"),
        ("wh1", "dock-b"),
        ("wh1", "truck-1"),
        ("wh1", "truck-2"),
    }
    dock_a = brokers[("wh1", "dock-a")]
    assert dock_a.username == "gw-wh1-dock-a"
    ingest_url = parse_mqtt_url(svc.mqtt_url)
    ingest = connect(ingest_url, ingest_url.username, ingest_url.password)
    gateway = connect(dock_a, dock_a.username, dock_a.password)
    try:
        assert ingest.subscribe("tracklane/v1/+/+/scans") == 1
        assert gateway.publish(event_topic("wh1", "dock-b", "scans"), b"forged") == NOT_AUTHORIZED
        assert gateway.publish(event_topic("wh1", "truck-1", "positions"), b"x") == NOT_AUTHORIZED
        assert gateway.publish(event_topic("wh1", "dock-a", "scans"), b"own") == 0
        # The forged messages, sent first on the same connection, would have come first.
        assert ingest.next_message() == (event_topic("wh1", "dock-a", "scans"), b"own")
        assert ingest.received.empty()
    finally:
        close(gateway)
        close(ingest)


def test_a_gateway_provisioned_with_the_cli_is_stored_by_serves_ingest(
    tmp_path: Path, database_url: str
) -> None:
    """`tracklane gateway provision` writes where the private broker reads, and reloads it;
    ingest, logged in with its own user, stores that gateway's events."""
    settings = _settings(tmp_path / "data", database_url)
    with (
        runtime.services(settings) as svc,
        ingest_running(
            settings.model_copy(update={"ingest_client_id": f"ingest-{uuid.uuid4().hex[:8]}"}),
            database_url=svc.database_url,
            mqtt_url=svc.mqtt_url,
            storage_mode=StorageMode("postgresql", "test"),
            registry=CollectorRegistry(),
        ) as running,
    ):
        assert running.consumer is not None
        result = CliRunner().invoke(
            app,
            ["gateway", "provision", "gate-7", "--site", "wh2", "--broker-url", svc.broker_url],
            env={"TRACKLANE_DATA_DIR": str(settings.data_dir)},
        )
        assert result.exit_code == 0, result.output
        assert "the running broker reloaded them" in result.output
        lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
        address = parse_mqtt_url(lines["mqtt_url"])
        gateway = wait_until(
            lambda: _try_connect(address), timeout=WAIT, what="the new gateway to log in"
        )
        try:
            wait_until(lambda: running.consumer._subscribed, timeout=WAIT, what="subscription")
            events = synthetic.positions(site="wh2", gateway="gate-7", device="gps", count=20)
            for batch in synthetic.batches(events, site="wh2", gateway="gate-7", size=10):
                assert (
                    gateway.publish(event_topic("wh2", "gate-7", "positions"), encode(batch)) == 0
                )
            wait_until(
                lambda: running.stats.snapshot()["events_stored"] == 20,
                timeout=WAIT,
                what="20 positions stored",
            )
        finally:
            close(gateway)


def _try_connect(address: BrokerAddress) -> Peer | None:
    try:
        return connect(address, address.username, address.password)
    except ConnectionRefusedError:
        return None


def test_each_start_gives_ingest_a_new_password(tmp_path: Path, database_url: str) -> None:
    settings = _settings(tmp_path / "data", database_url)
    with runtime.services(settings) as first:
        old = parse_mqtt_url(first.mqtt_url)
    with runtime.services(settings) as second:
        new = parse_mqtt_url(second.mqtt_url)
        assert new.password != old.password
        assert _refusal(new, old.username, old.password) == NOT_AUTHORIZED
        close(connect(new, new.username, new.password))


def test_an_operators_broker_is_left_as_configured(tmp_path: Path, database_url: str) -> None:
    url = "mqtt://ops:their-secret@127.0.0.1:1884"
    settings = _settings(tmp_path / "data", database_url, mqtt_url=url)
    with runtime.services(settings) as svc:
        assert (svc.mqtt_url, svc.broker_url) == (url, "mqtt://127.0.0.1:1884")
        assert not svc.embedded_broker and svc.auth_dir is None
    assert provision_gateways(settings, demo_gateways(settings.data_dir)) == {}
    assert not (settings.data_dir / "mosquitto").exists()
