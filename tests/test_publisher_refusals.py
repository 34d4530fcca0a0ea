"""A PUBACK with an error code: refused for good is kept aside, refused for now is retried.

The permanent case runs against a real Mosquitto with provisioned credentials and ACLs (a
gateway configured with another gateway's login is answered 0x87 Not authorized). Mosquitto
cannot be made to answer 0x97 or 0x80 on demand, so the transient case uses a small MQTT 5
peer on a real socket that scripts its PUBACK reason codes, as paho's own tests do.
"""

from __future__ import annotations

import asyncio
import json
import queue
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_agent.config import PublishConfig
from edge_agent.outbox import Outbox
from edge_agent.publish_batches import RetryPause
from edge_agent.publish_policy import Verdict, puback_verdict
from edge_agent.publisher import Publisher
from event_contract import DeviceState, DeviceStatus, new_event_id
from mqtt_client import BrokerAddress, make_client, parse_mqtt_url
from tracklane.embedded import EmbeddedBroker
from tracklane.gateways import Principal, gateway_principal, provision

OBSERVER = Principal("observer", "# test observer", ("topic read #",))
WAIT_S = 10.0


def statuses(device: str, n: int) -> list[DeviceStatus]:
    now = datetime.now(UTC)
    return [
        DeviceStatus(
            event_id=new_event_id(),
            device=device,
            seq=seq,
            device_time=now,
            received_at=now,
            state=DeviceState.ONLINE,
        )
        for seq in range(n)
    ]


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[BrokerAddress, dict[str, str]]]:
    auth = tmp_path / "auth"
    passwords = {
        "a": provision(auth, gateway_principal("dock", "a")).password,
        "observer": provision(auth, OBSERVER).password,
    }
    broker = EmbeddedBroker(tmp_path / "broker", auth_dir=auth)
    broker.start()
    try:
        yield parse_mqtt_url(broker.url), passwords
    finally:
        broker.stop()


async def until(probe: Callable[[], bool]) -> None:
    """Poll the publisher's counters (they change on the event loop) until `probe()`."""
    for _ in range(int(WAIT_S / 0.02)):
        if probe():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def login(broker: BrokerAddress, username: str, password: str) -> BrokerAddress:
    return BrokerAddress(broker.host, broker.port, username=username, password=password)


def observe(broker: BrokerAddress) -> tuple[Any, queue.Queue[str]]:
    """A client that sees every message the broker routes."""
    seen: queue.Queue[str] = queue.Queue()
    subscribed = queue.Queue[int]()
    client, props = make_client(broker, f"test-obs-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.put(mid)
    client.on_message = lambda c, u, m: seen.put(m.topic)
    client.connect(broker.host, broker.port, properties=props)
    client.loop_start()
    subscribed.get(timeout=WAIT_S)
    return client, seen


def test_a_batch_refused_as_not_authorized_is_quarantined_and_requeued_once_fixed(
    secured: tuple[BrokerAddress, dict[str, str]], tmp_path: Path
) -> None:
    broker, pw = secured
    path = tmp_path / "outbox.db"
    observer, seen = observe(login(broker, "observer", pw["observer"]))

    async def run(gateway: str, events: list[DeviceStatus] | None) -> Publisher:
        outbox = Outbox(path)
        publisher = Publisher(
            site="dock",
            gateway=gateway,
            broker=login(broker, "gw-dock-a", pw["a"]),
            publish=PublishConfig(batch_max_events=5, linger_ms=50),
            outbox=outbox,
        )
        await publisher.start()
        try:
            async with asyncio.timeout(WAIT_S):
                if events is not None:
                    publisher.submit(events)
                    await until(lambda: publisher.failed == len(events))
                else:
                    assert outbox.requeue_quarantined() == 12
                    publisher.submit([])
                    await until(lambda: publisher.published == 12)
            await publisher.close()
        finally:
            outbox.close()
        return publisher

    try:
        # Misconfigured: gateway b with gateway a's login may not write b's topics.
        refused = asyncio.run(run("b", statuses("d1", 12)))
        assert refused.failed == 12 and refused.published == 0 and refused.retried == 0
        with Outbox(path) as box:  # kept on disk, out of the queue, counted
            assert box.depth() == 0 and box.quarantined() == 12
            assert box.counters()["outbox_quarantined"] == 12
        time.sleep(0.3)
        assert seen.empty(), "the broker routed a refused batch"
        # Fixed: the same outbox, now as gateway a, delivers the kept events.
        fixed = asyncio.run(run("a", None))
        assert fixed.published == 12 and fixed.failed == 0
        with Outbox(path) as box:
            assert box.depth() == 0 and box.quarantined() == 0
        topics = {seen.get(timeout=WAIT_S) for _ in range(3)}
        assert topics == {"tracklane/v1/dock/a/status"}
    finally:
        observer.disconnect()
        observer.loop_stop()


class ScriptedBroker:
    """An MQTT 5 peer on a real socket: accepts a session, answers each PUBLISH with the
    next reason code in `codes` (then 0x00), and records (time, topic, payload)."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = list(codes)
        self.publishes: list[tuple[float, str, bytes]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> BrokerAddress:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return BrokerAddress("127.0.0.1", self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readexactly(1))[0]
                length, shift = 0, 0
                while True:
                    byte = (await reader.readexactly(1))[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                body = await reader.readexactly(length)
                kind = head >> 4
                if kind == 1:  # CONNECT -> CONNACK: no session present, success
                    writer.write(b"\x20\x03\x00\x00\x00")
                elif kind == 3:  # PUBLISH, QoS 1 -> PUBACK with the scripted code
                    size = int.from_bytes(body[:2])
                    topic, packet_id = body[2 : 2 + size].decode(), body[2 + size : 4 + size]
                    props = body[4 + size]  # properties length (one byte is enough here)
                    payload = body[5 + size + props :]
                    self.publishes.append((time.monotonic(), topic, payload))
                    code = self.codes.pop(0) if self.codes else 0x00
                    writer.write(b"\x40\x03" + packet_id + bytes([code]))
                elif kind == 12:  # PINGREQ
                    writer.write(b"\xd0\x00")
                elif kind == 14:  # DISCONNECT
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.parametrize("code", [0x97, 0x80, 0x83])
def test_a_batch_refused_for_now_is_sent_again_after_a_pause(code: int) -> None:
    async def scenario() -> tuple[Publisher, ScriptedBroker, Outbox]:
        peer = ScriptedBroker([code, code])
        address = await peer.start()
        outbox = Outbox()
        publisher = Publisher(
            site="wh1",
            gateway="gw",
            broker=address,
            publish=PublishConfig(batch_max_events=10, linger_ms=1),
            outbox=outbox,
            retry=RetryPause(initial_s=0.2, max_s=1.0),
        )
        await publisher.start()
        try:
            async with asyncio.timeout(WAIT_S):
                publisher.submit(statuses("d1", 4))
                await until(lambda: publisher.published == 4)
                assert await publisher.close()
        finally:
            await peer.stop()
        return publisher, peer, outbox

    publisher, peer, outbox = asyncio.run(scenario())
    assert publisher.published == 4 and publisher.failed == 0 and publisher.retried == 8
    assert outbox.depth() == 0 and outbox.quarantined() == 0
    # The same batch three times, the pauses doubling: 0.2 s, then 0.4 s.
    times = [t for t, _, _ in peer.publishes]
    batches = [[e["event_id"] for e in json.loads(p)["events"]] for _, _, p in peer.publishes]
    assert len(batches) == 3 and batches[0] == batches[1] == batches[2]
    assert times[1] - times[0] >= 0.18 and times[2] - times[1] >= 0.38


def test_the_puback_table_keeps_permanent_and_transient_codes_apart() -> None:
    assert puback_verdict(0x87)[0] is Verdict.QUARANTINE
    assert puback_verdict(0x90)[0] is Verdict.QUARANTINE
    for code in (0x80, 0x83, 0x97, 0xA0):  # 0xA0: unknown, so not proof of "never"
        assert puback_verdict(code)[0] is Verdict.RETRY
    for code in (0x00, 0x10):
        assert puback_verdict(code)[0] is Verdict.DELIVERED
