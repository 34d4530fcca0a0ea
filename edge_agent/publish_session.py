"""The gateway's MQTT 5 session: connect, the last will, subscriptions, retained messages.

paho runs its network loop in its own thread (`loop_start`); every callback here only hands
over to the asyncio loop with `call_soon_threadsafe`, so the session's state, and whatever its
owner's handlers touch, is used from the event loop alone. The session survives reconnects
(`clean_start=False`): paho resends unacknowledged QoS 1 messages after one.

Side channels bypass the outbox: the retained, QoS 1 last will and state messages
(edge_agent/health.py), and subscriptions such as the dock feedback topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt

from mqtt_client import BrokerAddress, make_client

log = logging.getLogger(__name__)

OnMessage = Callable[[bytes], None]
Message = tuple[str, bytes]  # (topic, payload)
OnPuback = Callable[[int, int], None]  # (paho mid, reason code), on the event loop
GOODBYE_TIMEOUT_S = 2.0


class PublisherError(RuntimeError):
    pass


class MqttSession:
    """`await start()` (returns the in-flight window the broker allows), `await stop()`.

    `on_puback(mid, code)` runs on the event loop for every PUBACK; `reuse_mid(mid)` runs
    when a side-channel message takes a paho mid, which may still name an unacknowledged
    batch (paho's 16-bit mids wrap).
    """

    def __init__(
        self,
        *,
        client_id: str,
        gateway: str,
        broker: BrokerAddress,
        on_puback: OnPuback,
        reuse_mid: Callable[[int], None],
        max_in_flight: int,
        session_expiry_s: int,
        connect_timeout_s: float,
        will: Message | None = None,
        on_connected: Callable[[], None] | None = None,
        subscriptions: Mapping[str, OnMessage] | None = None,
    ) -> None:
        self.client_id = client_id
        self.gateway = gateway
        self.broker = broker
        self.on_puback = on_puback
        self.reuse_mid = reuse_mid
        self.max_in_flight = max_in_flight
        self.session_expiry_s = session_expiry_s
        self.connect_timeout_s = connect_timeout_s
        self.will = will
        self.on_connected = on_connected
        self.subscriptions = dict(subscriptions or {})
        self.connected = False
        self.closing = False
        self.client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connack: asyncio.Future[tuple[Any, Any]] | None = None

    def where(self) -> str:
        return f"gateway {self.gateway}: MQTT broker {self.broker.redacted()}"

    async def start(self) -> int:
        """Connect, raising PublisherError with the reason if that fails; the window size."""
        self._loop = asyncio.get_running_loop()
        self._connack = self._loop.create_future()
        client, props = make_client(
            self.broker, self.client_id, session_expiry_s=self.session_expiry_s
        )
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        client.on_message = self._paho_message
        if self.will is not None:
            client.will_set(self.will[0], self.will[1], qos=1, retain=True)
        client.max_queued_messages_set(0)  # the publisher's window bounds what is queued
        client.max_inflight_messages_set(self.max_in_flight)
        self.client = client
        try:
            await asyncio.wait_for(
                asyncio.to_thread(
                    client.connect,
                    self.broker.host,
                    self.broker.port,
                    keepalive=30,
                    clean_start=False,
                    properties=props,
                ),
                self.connect_timeout_s,
            )
        except ConnectionRefusedError:
            raise PublisherError(
                f"{self.where()} refused the connection; is Mosquitto running on that port?"
            ) from None
        except TimeoutError:
            raise PublisherError(
                f"{self.where()} did not answer within {self.connect_timeout_s:g} s"
            ) from None
        except OSError as err:
            raise PublisherError(f"{self.where()}: {err.strerror or err}") from None
        client.loop_start()
        try:
            reason, props_in = await asyncio.wait_for(self._connack, self.connect_timeout_s)
        except TimeoutError:
            await self.stop()
            raise PublisherError(f"{self.where()} sent no CONNACK") from None
        if reason.is_failure:
            await self.stop()
            raise PublisherError(f"{self.where()} refused the session: {reason}") from None
        # MQTT 5: never have more unacknowledged QoS 1 messages out than the broker accepts.
        return min(self.max_in_flight, getattr(props_in, "ReceiveMaximum", self.max_in_flight))

    async def stop(self) -> None:
        """DISCONNECT (so the broker does not publish the will) and stop paho's thread."""
        if self.client is not None:
            self.client.disconnect()
            await asyncio.to_thread(self.client.loop_stop)

    def publish(self, topic: str, payload: bytes) -> tuple[int, int]:
        """A QoS 1 publish: (paho's rc, mid). NO_CONN is fine: paho sends it on reconnect."""
        assert self.client is not None
        info = self.client.publish(topic, payload, qos=1)
        return info.rc, info.mid

    def publish_retained(self, topic: str, payload: bytes) -> bool:
        """Publish a retained QoS 1 message now, outside the outbox. False if not connected."""
        if self.client is None or not self.connected:
            return False
        info = self.client.publish(topic, payload, qos=1, retain=True)
        self.reuse_mid(info.mid)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    async def say_goodbye(self, message: Message) -> bool:
        """Publish a retained message and wait (briefly) for its PUBACK, before disconnecting."""
        if self.client is None or not self.connected:
            return False
        info = self.client.publish(message[0], message[1], qos=1, retain=True)
        self.reuse_mid(info.mid)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        await asyncio.to_thread(info.wait_for_publish, GOODBYE_TIMEOUT_S)
        return info.is_published()

    def _to_loop(self, func: Callable[..., None], *args: Any) -> None:
        if self._loop is None:
            return
        # RuntimeError: the event loop is already closed and nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(func, *args)

    # paho's callbacks run in its network thread.
    def _paho_connect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._to_loop(self._on_connect, reason, props)

    def _paho_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._to_loop(self._on_disconnect, reason)

    def _paho_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        self._to_loop(self.on_puback, mid, reason.value)

    def _paho_message(self, client: Any, userdata: Any, msg: Any) -> None:
        for pattern, handler in self.subscriptions.items():
            if mqtt.topic_matches_sub(pattern, msg.topic):
                self._to_loop(self._deliver, handler, msg.topic, msg.payload)

    def _deliver(self, handler: OnMessage, topic: str, payload: bytes) -> None:
        try:
            handler(payload)
        except Exception:
            log.exception("%s: handler for %s failed", self.where(), topic)

    def _on_connect(self, reason: Any, props: Any) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result((reason, props))
        elif not reason.is_failure:
            log.info("%s: reconnected", self.where())
        self.connected = not reason.is_failure
        if not self.connected or self.client is None:
            return
        for topic in self.subscriptions:
            self.client.subscribe(topic, qos=1)
        if self.on_connected is not None:
            try:
                self.on_connected()
            except Exception:
                log.exception("%s: on_connected callback failed", self.where())

    def _on_disconnect(self, reason: Any) -> None:
        if self.connected and not self.closing:
            log.warning("%s: disconnected (%s); paho will reconnect", self.where(), reason)
        self.connected = False
