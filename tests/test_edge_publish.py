"""Simulated devices -> edge agent -> real Mosquitto -> a separate subscriber.

What the agent says it published (PUBACKed) must arrive, decode without rejects, and keep
each device's seq going up.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from edge_agent import EdgeAgent, Publisher, PublisherError
from edge_agent.config import GatewayConfig, PublishConfig, parse_gateway_config
from edge_agent.outbox import Outbox
from event_contract import (
    KIND_OF_TYPE,
    DeviceState,
    DeviceStatus,
    decode,
    event_topic,
    new_event_id,
)
from mqtt_client import BrokerAddress, make_client, parse_mqtt_url
from simulators.gps import GpsSimConfig, GpsSimulator
from simulators.scanner import ScannerSimConfig, ScannerSimulator
from tests.mqtt_helpers import wait_until
from tracklane.embedded.broker import free_port


class Subscriber:
    """A paho client in its own thread recording every message under `topic`."""

    def __init__(self, broker: BrokerAddress, topic: str, *, persistent: bool = False) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client, props = make_client(
            broker, f"test-sub-{uuid.uuid4().hex[:8]}", session_expiry_s=600 if persistent else 0
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, clean_start=not persistent, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise AssertionError(f"no SUBACK for {topic} within 10 s")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.payload))

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self._lock:
            return list(self.messages)

    def event_ids(self) -> set[Any]:
        now = datetime.now(UTC)
        return {e.event_id for t, p in self.snapshot() for e in decode(t, p, now=now).events}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def gateway_config(
    gateway: str, *, gps_port: int, scanner_port: int, **publish: int
) -> GatewayConfig:
    return parse_gateway_config(
        {
            "site": "wh1",
            "gateway": gateway,
            "publish": publish,
            "sources": [
                {
                    "type": "nmea_tcp",
                    "device": f"{gateway}-gps",
                    "host": "127.0.0.1",
                    "port": gps_port,
                },
                {
                    "type": "scanner_tcp",
                    "device": f"{gateway}-scanner",
                    "host": "127.0.0.1",
                    "port": scanner_port,
                    "read_point": {"door": "door-1"},
                    "stage": "dispatch",
                },
            ],
        }
    )


async def run_agent_for(
    agent: EdgeAgent, seconds: float, during: Callable[[], Any] | None = None
) -> None:
    """Run until `seconds` after the agent is ready (and `during` returned), then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        async with asyncio.timeout(30):
            ready = asyncio.create_task(agent.ready.wait())
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # the agent failed to start: show why
            if during is not None:
                await during()
            await asyncio.sleep(seconds)
            stop.set()
            await task
    finally:
        task.cancel()


def decode_all(messages: list[tuple[str, bytes]]) -> list[tuple[str, Any]]:
    """(topic, event) for every event; fails on any reject."""
    now = datetime.now(UTC)
    out = []
    for topic, payload in messages:
        decoded = decode(topic, payload, now=now)
        assert not decoded.rejects, f"{topic}: {decoded.rejects}"
        out += [(topic, event) for event in decoded.events]
    return out


def test_simulated_devices_reach_the_broker_complete_and_in_order(
    mqtt_broker: BrokerAddress,
) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    published: list[Any] = []
    subscriber = Subscriber(mqtt_broker, "tracklane/v1/#")

    async def scenario() -> tuple[EdgeAgent, list[str]]:
        gps_config = GpsSimConfig(rate_hz=20, noise_m=1.0)
        scanner_config = ScannerSimConfig(rate_hz=30, plain_every=4)
        async with GpsSimulator(gps_config) as gps, ScannerSimulator(scanner_config) as scanner:
            config = gateway_config(
                gateway,
                gps_port=gps.port,
                scanner_port=scanner.port,
                batch_max_events=5,
                linger_ms=50,
            )
            agent = EdgeAgent(config, mqtt_broker, on_published=published.extend)
            await run_agent_for(agent, 1.5)
            return agent, [s.code for s in scanner.sent]

    try:
        agent, sent_codes = asyncio.run(scenario())
        ids = {e.event_id for e in published}
        wait_until(lambda: ids <= subscriber.event_ids(), timeout=10, what="every published event")
        ours = [(t, p) for t, p in subscriber.snapshot() if t.split("/")[3] == gateway]
    finally:
        subscriber.close()

    # Nothing lost between the devices and the broker, nothing counted twice.
    counters = agent.counters()
    assert counters["published"] == len(published) == len(ids)
    assert counters["publish_failed"] == counters["queued"] == counters["in_flight"] == 0
    data_events = [e for e in published if e.type != "status"]
    assert counters["events_read"] == len(data_events)

    received = decode_all(ours)
    assert {e.event_id for _, e in received} == ids
    assert len(received) == len(ids), "no duplicates without a reconnect"
    for topic, event in received:
        assert topic == event_topic("wh1", gateway, KIND_OF_TYPE[event.type])

    # Batching: never more than batch_max_events, and the linger does gather several.
    sizes = [len(decode(t, p, now=datetime.now(UTC)).events) for t, p in ours]
    assert max(sizes) <= 5 and max(sizes) > 1

    # Per device and topic, seq strictly increases in arrival order; per device it is unique.
    by_stream: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_device: dict[str, list[int]] = defaultdict(list)
    for _, event in received:
        by_stream[event.device, event.type].append(event.seq)
        by_device[event.device].append(event.seq)
    for stream, seqs in by_stream.items():
        assert seqs == sorted(set(seqs)), f"{stream}: seq out of order: {seqs}"
    for device, seqs in by_device.items():
        assert len(seqs) == len(set(seqs)), f"{device}: a seq used twice"
    assert set(by_device) == {f"{gateway}-gps", f"{gateway}-scanner"}

    positions = [e for _, e in received if e.type == "position"]
    scans = sorted((e for _, e in received if e.type == "scan"), key=lambda e: e.seq)
    assert len(positions) >= 10 and len(scans) >= 10
    assert all(51.99 < p.lat < 52.01 and 4.39 < p.lon < 4.42 for p in positions)
    # The scans are the simulator's codes, in the order it sent them.
    assert [s.code for s in scans] == sent_codes[: len(scans)]
    assert {s.symbology for s in scans} == {"gs1-128", None}
    assert all(s.read_point.door == "door-1" and s.stage == "dispatch" for s in scans)

    # Each device: online when connected, offline when the agent stops.
    for device in by_device:
        statuses = sorted(
            (e for _, e in received if e.type == "status" and e.device == device),
            key=lambda e: e.seq,
        )
        assert [s.state for s in statuses] == [DeviceState.ONLINE, DeviceState.OFFLINE]
        assert statuses[0].detail.startswith("connected to 127.0.0.1:")
        assert statuses[1].detail == f"gateway {gateway}: agent stopping"
        assert statuses[1].counters["events"] == sum(1 for e in data_events if e.device == device)


def test_publisher_batches_by_size_and_flushes_by_linger(mqtt_broker: BrokerAddress) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    subscriber = Subscriber(mqtt_broker, f"tracklane/v1/wh1/{gateway}/+")
    now = datetime.now(UTC)

    def status(seq: int) -> DeviceStatus:
        return DeviceStatus(
            event_id=new_event_id(),
            device="d1",
            seq=seq,
            device_time=now,
            received_at=now,
            state=DeviceState.ONLINE,
        )

    async def scenario() -> tuple[list[int], bool]:
        acked: list[int] = []
        all_acked = asyncio.Event()

        def on_published(events: list[Any]) -> None:
            acked.append(len(events))
            if sum(acked) == 12:
                all_acked.set()

        publisher = Publisher(
            site="wh1",
            gateway=gateway,
            broker=mqtt_broker,
            publish=PublishConfig(batch_max_events=5, linger_ms=300),
            on_published=on_published,
            max_in_flight=2,
        )
        await publisher.start()
        async with asyncio.timeout(15):
            for seq in range(12):
                publisher.submit([status(seq)])
            await all_acked.wait()  # 5 + 5 by size, then 2 when the linger runs out
            clean = await publisher.close()
        return acked, clean

    try:
        acked, clean = asyncio.run(scenario())
        wait_until(lambda: len(subscriber.snapshot()) >= 3, timeout=10, what="three batches")
        sizes = [len(decode(t, p, now=now).events) for t, p in subscriber.snapshot()]
    finally:
        subscriber.close()
    assert clean
    assert acked == sizes == [5, 5, 2]


def test_an_unreachable_device_is_published_once_as_offline(mqtt_broker: BrokerAddress) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    dead_port = free_port()
    subscriber = Subscriber(mqtt_broker, f"tracklane/v1/wh1/{gateway}/+")

    async def scenario() -> EdgeAgent:
        async with GpsSimulator(GpsSimConfig(rate_hz=10)) as gps:
            config = gateway_config(gateway, gps_port=gps.port, scanner_port=dead_port)
            agent = EdgeAgent(config, mqtt_broker)
            await run_agent_for(agent, 1.5)
            return agent

    try:
        agent = asyncio.run(scenario())
        wait_until(
            lambda: len(subscriber.event_ids()) >= agent.published, timeout=10, what="all events"
        )
        events = [e for _, e in decode_all(subscriber.snapshot())]
    finally:
        subscriber.close()
    scanner = f"{gateway}-scanner"
    scanner_events = [e for e in events if e.device == scanner]
    # Retried several times, but reported once: a status per change, not per attempt.
    assert agent.sources[scanner].counters()["connect_failures"] >= 2
    assert [(e.type, e.state) for e in scanner_events] == [("status", DeviceState.OFFLINE)]
    assert scanner_events[0].detail == (
        f"gateway {gateway}: scanner {scanner} at 127.0.0.1:{dead_port} refused the connection; "
        "is the scanner (or simulator) running?"
    )
    assert any(e.type == "position" for e in events), "the other device kept working"


def test_a_broker_that_is_not_running_is_a_clear_error() -> None:
    port = free_port()
    config = gateway_config("gw-nobroker", gps_port=1, scanner_port=2)
    agent = EdgeAgent(config, BrokerAddress("127.0.0.1", port))
    with pytest.raises(PublisherError) as err:
        asyncio.run(asyncio.wait_for(agent.run(asyncio.Event()), 15))
    assert str(err.value) == (
        f"gateway gw-nobroker: MQTT broker mqtt://127.0.0.1:{port} refused the connection; "
        "is Mosquitto running on that port?"
    )


@pytest.mark.slow
def test_events_survive_a_broker_restart(broker_factory: Callable[..., Any]) -> None:
    broker = broker_factory("restarting").start()
    address = parse_mqtt_url(broker.url)
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    published: list[Any] = []
    subscriber = Subscriber(address, f"tracklane/v1/wh1/{gateway}/+", persistent=True)

    async def outage() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(1.5)  # the agent keeps reading; paho holds the unacked batches
        await asyncio.to_thread(broker.start)

    async def scenario() -> EdgeAgent:
        gps_config, scanner_config = GpsSimConfig(rate_hz=10), ScannerSimConfig(rate_hz=10)
        async with GpsSimulator(gps_config) as gps, ScannerSimulator(scanner_config) as scanner:
            config = gateway_config(
                gateway, gps_port=gps.port, scanner_port=scanner.port, linger_ms=50
            )
            agent = EdgeAgent(config, address, on_published=published.extend)
            await run_agent_for(agent, 1.0, during=outage)
            return agent

    try:
        agent = asyncio.run(scenario())
        ids = {e.event_id for e in published}
        wait_until(lambda: ids <= subscriber.event_ids(), timeout=20, what="every published event")
    finally:
        subscriber.close()
    counters = agent.counters()
    assert counters["publish_failed"] == counters["in_flight"] == counters["queued"] == 0
    assert counters["events_read"] == sum(1 for e in published if e.type != "status")
    assert counters["events_read"] >= 30  # the outage was covered by reads, not a pause


def test_close_gives_up_after_its_timeout_when_the_broker_is_gone(
    broker_factory: Callable[..., Any],
) -> None:
    broker = broker_factory("vanishing").start()
    now = datetime.now(UTC)

    async def scenario() -> tuple[bool, float, Publisher]:
        publisher = Publisher(
            site="wh1", gateway=f"gw-{uuid.uuid4().hex[:8]}", broker=parse_mqtt_url(broker.url)
        )
        await publisher.start()
        await asyncio.to_thread(broker.stop)
        publisher.submit(
            DeviceStatus(
                event_id=new_event_id(),
                device="d1",
                seq=seq,
                device_time=now,
                received_at=now,
                state=DeviceState.ONLINE,
            )
            for seq in range(3)
        )
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(15):
            clean = await publisher.close(drain_timeout_s=1.0)
        return clean, asyncio.get_running_loop().time() - started, publisher

    clean, took, publisher = asyncio.run(scenario())
    assert not clean
    assert took < 5
    assert publisher.published == 0 and publisher.in_flight == 1  # one batch of 3, never acked


def test_a_restarted_publisher_sends_the_backlog_first_in_device_order(
    mqtt_broker: BrokerAddress, tmp_path: Any
) -> None:
    """Events stored but never acknowledged (the process died) go out on the next start."""
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    subscriber = Subscriber(mqtt_broker, f"tracklane/v1/wh1/{gateway}/+")
    now = datetime.now(UTC)
    path = tmp_path / "outbox.sqlite"

    def status(device: str, seq: int) -> DeviceStatus:
        return DeviceStatus(
            event_id=new_event_id(),
            device=device,
            seq=seq,
            device_time=now,
            received_at=now,
            state=DeviceState.ONLINE,
        )

    backlog = [status(d, seq) for seq in range(40) for d in ("d1", "d2")]
    with Outbox(path) as box:
        box.append(backlog)  # then the process "dies": nothing was published

    async def scenario() -> list[Any]:
        acked: list[Any] = []
        all_acked = asyncio.Event()

        def on_published(events: list[Any]) -> None:
            acked.extend(events)
            if len(acked) == len(backlog):
                all_acked.set()

        outbox = Outbox(path)
        publisher = Publisher(
            site="wh1",
            gateway=gateway,
            broker=mqtt_broker,
            publish=PublishConfig(batch_max_events=7, linger_ms=5000),
            outbox=outbox,
            on_published=on_published,
            max_in_flight=3,
        )
        await publisher.start()
        # The (small) client-side paho mid counter is pushed near its wrap at 65,535.
        assert publisher.client is not None
        publisher.client._last_mid = 65_530
        # The backlog is overdue: it goes out at once, long before the 5 s linger.
        async with asyncio.timeout(3):
            await all_acked.wait()
        async with asyncio.timeout(15):
            assert await publisher.close()
        assert outbox.depth() == 0
        outbox.close()
        return acked

    try:
        acked = asyncio.run(scenario())
        wait_until(lambda: len(subscriber.event_ids()) >= 80, timeout=10, what="the backlog")
        received = [e for _, e in decode_all(subscriber.snapshot())]
    finally:
        subscriber.close()
    assert {e.event_id for e in acked} == {e.event_id for e in backlog}
    for device in ("d1", "d2"):
        assert [e.seq for e in received if e.device == device] == list(range(40))
