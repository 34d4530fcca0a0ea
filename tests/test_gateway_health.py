"""Gateway health on a real Mosquitto: retained status, last will, goodbye on a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge_agent import EdgeAgent, parse_gateway_config
from edge_agent.config import GatewayConfig
from edge_agent.health import DeviceHealth, Snapshot, state_payload
from event_contract import DeviceState, TopicError, gateway_state_topic, parse_topic, subscription
from mqtt_client import BrokerAddress
from simulators.scanner import ScannerSimConfig, ScannerSimulator
from tests.mqtt_helpers import wait_until
from tests.test_edge_publish import Subscriber


def scanner_gateway(gateway: str, port: int, **extra: Any) -> GatewayConfig:
    return parse_gateway_config(
        {
            "site": "wh1",
            "gateway": gateway,
            "sources": [
                {
                    "type": "scanner_tcp",
                    "device": f"{gateway}-scanner",
                    "host": "127.0.0.1",
                    "port": port,
                    "read_point": {"door": "door-1"},
                }
            ],
            **extra,
        }
    )


async def until(probe: Any, what: str) -> None:
    """Poll `probe` from a thread (the agent's state has no events to wait on)."""
    await asyncio.to_thread(wait_until, probe, timeout=15, what=what)


@contextlib.asynccontextmanager
async def running(agent: EdgeAgent) -> AsyncIterator[EdgeAgent]:
    """The agent running, ready and connected to its scanner; stopped cleanly on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        async with asyncio.timeout(20):
            ready = asyncio.create_task(agent.ready.wait())
            await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # the agent failed to start: show why
        await until(
            lambda: any(s == DeviceState.ONLINE for s, _ in agent.device_states.values()),
            "the agent to connect to its device",
        )
        yield agent
        stop.set()
        async with asyncio.timeout(20):
            await task
    finally:
        task.cancel()


def states(subscriber: Subscriber) -> list[dict[str, Any]]:
    return [json.loads(p) for _, p in subscriber.snapshot()]


async def wait_for_state(subscriber: Subscriber, probe: Any, what: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        return next((s for s in states(subscriber) if probe(s)), None)

    return await asyncio.to_thread(wait_until, found, timeout=15, what=what)


def test_state_topic_is_outside_the_event_tree() -> None:
    topic = gateway_state_topic("wh1", "dock-a")
    assert topic == "tracklane/state/v1/wh1/dock-a"
    with pytest.raises(TopicError):
        parse_topic(topic)
    with pytest.raises(TopicError, match="gateway 'dock/a'"):
        gateway_state_topic("wh1", "dock/a")
    # No event subscription (ingest's, or a tool's whole-tree one) matches it.
    import paho.mqtt.client as mqtt

    for pattern in (subscription(), subscription("status"), "tracklane/v1/#"):
        assert not mqtt.topic_matches_sub(pattern, topic)


def test_state_payload_carries_counters_and_devices() -> None:
    snapshot = Snapshot(
        counters={"outbox_depth": 3, "outbox_dropped": 1},
        devices={"s1": DeviceHealth(state="online", detail="ok", events_read=2, last_read=None)},
    )
    body = json.loads(
        state_payload(site="wh1", gateway="g", state="online", reason="x", snapshot=snapshot)
    )
    assert body["counters"]["outbox_depth"] == 3
    assert body["devices"]["s1"] == {
        "state": "online",
        "detail": "ok",
        "events_read": 2,
        "last_read": None,
    }


def test_retained_status_then_will_on_a_dead_connection_then_goodbye(
    mqtt_broker: BrokerAddress,
) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    topic = gateway_state_topic("wh1", gateway)
    device = f"{gateway}-scanner"

    async def scenario() -> None:
        async with ScannerSimulator(ScannerSimConfig(rate_hz=0)) as scanner:
            # A long linger keeps the events in the outbox, for the status to show its depth.
            config = scanner_gateway(
                gateway,
                scanner.port,
                health={"status_interval_s": 0.2},
                publish={"linger_ms": 60_000},
            )
            async with running(EdgeAgent(config, mqtt_broker)) as agent:
                await scanner.server.wait_for_client()
                scanner.scan("PKG-000001", aim=None)

                # A late subscriber still sees the gateway's state: it is retained.
                late = await asyncio.to_thread(Subscriber, mqtt_broker, topic)
                try:
                    status = await wait_for_state(
                        late,
                        lambda s: s["devices"][device]["last_read"] is not None,
                        "a status showing the scan",
                    )
                finally:
                    late.close()
                assert status["state"] == "online" and status["gateway"] == gateway
                # The scan and the scanner's "online" status wait in the outbox.
                assert status["counters"]["outbox_depth"] == agent.outbox.depth() == 2
                assert "outbox_dropped" in status["counters"]
                assert status["devices"][device]["state"] == "online"
                assert status["devices"][device]["events_read"] == 1

                # The connection dies without a DISCONNECT: the broker publishes the will,
                # and once paho has reconnected the agent says it is online again.
                watcher = await asyncio.to_thread(Subscriber, mqtt_broker, topic)
                try:
                    client = agent.publisher.client
                    assert client is not None
                    client.socket().shutdown(socket.SHUT_RDWR)
                    will = await wait_for_state(
                        watcher, lambda s: s["state"] == "offline", "the last will"
                    )
                    assert "last will" in will["reason"] and "counters" not in will
                    seen = len(states(watcher))
                    await wait_for_state(
                        watcher,
                        lambda s: s["state"] == "online" and s["reason"] == "connected",
                        "online again after the reconnect",
                    )
                    assert len(states(watcher)) > seen
                finally:
                    watcher.close()

        # A clean stop leaves a retained offline state with the final counters.
        after = await asyncio.to_thread(Subscriber, mqtt_broker, topic)
        try:
            goodbye = await wait_for_state(after, lambda s: True, "the retained state")
        finally:
            after.close()
        assert goodbye["state"] == "offline" and goodbye["reason"] == "agent stopped"
        assert goodbye["counters"]["outbox_depth"] == 0
        assert goodbye["devices"][device]["state"] == "offline"

    asyncio.run(scenario())
