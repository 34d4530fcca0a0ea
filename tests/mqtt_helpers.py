"""Small, real MQTT and polling helpers shared by the tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from mqtt_client import BrokerAddress, make_client

T = TypeVar("T")


def publish_all(broker: BrokerAddress, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
    """Publish and wait for every PUBACK."""
    client, props = make_client(broker, f"test-pub-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port, properties=props)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=10)
            assert info.is_published(), "broker did not acknowledge a test message"
    finally:
        client.disconnect()
        client.loop_stop()


def wait_until(probe: Callable[[], T], *, timeout: float = 15.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(0.05)
