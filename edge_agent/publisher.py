"""Events from the durable outbox to MQTT: batched per topic kind, QoS 1, a bounded window.

paho runs its network loop in its own thread (`loop_start`); its callbacks only hand over
to the asyncio loop with `call_soon_threadsafe`, so all of this object's state (and the
outbox, which is SQLite on one thread) is touched from the event loop alone.

Delivery is at-least-once across crashes: events are in the outbox before `submit` returns,
a row is deleted only after the broker's PUBACK for its batch, and on start whatever is still
in the outbox is sent first, oldest first, so each device's events keep their order. paho
resends unacknowledged batches after a reconnect (the session survives with
`clean_start=False`); after a restart the outbox resends them, and ingest drops duplicates.

The same connection carries the gateway's side channels, which bypass the outbox: a last
will and retained state messages (edge_agent/health.py), and subscriptions such as the dock
feedback topic, whose payloads are handed to the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import TypeAdapter

from event_contract import EVENT_KINDS, SCHEMA_VERSION, Event, EventKind, event_topic
from mqtt_client import BrokerAddress, make_client

from .config import PublishConfig
from .outbox import Outbox, Stored

log = logging.getLogger(__name__)

OnPublished = Callable[[list[Event]], None]
OnMessage = Callable[[bytes], None]
Message = tuple[str, bytes]  # (topic, payload)
GOODBYE_TIMEOUT_S = 2.0
_event_adapter: TypeAdapter[Any] = TypeAdapter(Event)


@dataclass(slots=True)
class _Flight:
    """A batch published and not yet acknowledged, under our own id (paho's mids wrap)."""

    kind: EventKind
    rows: list[Stored]
    mid: int


class PublisherError(RuntimeError):
    pass


class Publisher:
    """`await start()`, `submit(events)`, `await close()`.

    `published` counts events the broker acknowledged (PUBACK); `on_published(events)` is
    called on the event loop after each acknowledged batch. Without an `outbox` the
    publisher keeps one in memory, which a crash loses.

    `will` is set as the retained, QoS 1 last will; `on_connected()` runs on the event loop
    after every accepted CONNACK (reconnects too: the will may have fired meanwhile);
    `subscriptions` maps topic filters to handlers called on the event loop with each
    payload (QoS 1, subscribed again on every connect).
    """

    def __init__(
        self,
        *,
        site: str,
        gateway: str,
        broker: BrokerAddress,
        publish: PublishConfig | None = None,
        outbox: Outbox | None = None,
        on_published: OnPublished | None = None,
        max_in_flight: int = 100,
        session_expiry_s: int = 3600,
        connect_timeout_s: float = 10.0,
        will: Message | None = None,
        on_connected: Callable[[], None] | None = None,
        subscriptions: Mapping[str, OnMessage] | None = None,
    ) -> None:
        self.site = site
        self.gateway = gateway
        self.broker = broker
        self.config = publish or PublishConfig()
        self.outbox = outbox if outbox is not None else Outbox(":memory:")
        self.on_published = on_published
        self.max_in_flight = max_in_flight
        self.session_expiry_s = session_expiry_s
        self.connect_timeout_s = connect_timeout_s
        self.will = will
        self.on_connected = on_connected
        self.subscriptions = dict(subscriptions or {})
        self.published = 0
        self.batches = 0
        self.failed = 0  # events in batches the broker refused (PUBACK with an error code)
        self.connected = False
        self._closing = False
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connack: asyncio.Future[tuple[Any, Any]] | None = None
        self._window: asyncio.Semaphore | None = None
        self._in_flight: dict[int, _Flight] = {}  # by our id
        self._by_mid: dict[int, int] = {}  # paho mid -> our id, while in flight
        self._ids = itertools.count(1)
        self._all_acked = asyncio.Event()
        self._all_acked.set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The batching loop; it ends only after close(), or with an exception on a bug."""
        return self._task

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def submit(self, events: Iterable[Event]) -> int:
        """Store events in the outbox (durably, before returning) and wake the batching loop.

        Returns how many were kept: fewer only under the `refuse_new` overflow policy.
        """
        kept = self.outbox.append(events)
        self._wake.set()
        return kept

    def _where(self) -> str:
        return f"gateway {self.gateway}: MQTT broker {self.broker.redacted()}"

    async def start(self) -> None:
        """Connect (raising PublisherError with the reason if that fails) and start batching."""
        self._loop = asyncio.get_running_loop()
        self._connack = self._loop.create_future()
        # Gateway names are unique within a site only; two sessions with one client id
        # would keep taking each other over.
        client, props = make_client(
            self.broker, f"edge-{self.site}-{self.gateway}", session_expiry_s=self.session_expiry_s
        )
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        client.on_message = self._paho_message
        if self.will is not None:
            client.will_set(self.will[0], self.will[1], qos=1, retain=True)
        client.max_queued_messages_set(0)  # our window bounds what is queued
        client.max_inflight_messages_set(self.max_in_flight)
        self._client = client
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
                f"{self._where()} refused the connection; is Mosquitto running on that port?"
            ) from None
        except TimeoutError:
            raise PublisherError(
                f"{self._where()} did not answer within {self.connect_timeout_s:g} s"
            ) from None
        except OSError as err:
            raise PublisherError(f"{self._where()}: {err.strerror or err}") from None
        client.loop_start()
        try:
            reason, props_in = await asyncio.wait_for(self._connack, self.connect_timeout_s)
        except TimeoutError:
            await self._shutdown_client()
            raise PublisherError(f"{self._where()} sent no CONNACK") from None
        if reason.is_failure:
            await self._shutdown_client()
            raise PublisherError(f"{self._where()} refused the session: {reason}") from None
        # MQTT 5: never have more unacknowledged QoS 1 messages out than the broker accepts.
        window = min(self.max_in_flight, getattr(props_in, "ReceiveMaximum", self.max_in_flight))
        self._window = asyncio.Semaphore(window)
        self._task = asyncio.create_task(self._run(), name=f"publisher-{self.gateway}")

    async def close(
        self, *, drain_timeout_s: float = 10.0, goodbye: Callable[[], Message] | None = None
    ) -> bool:
        """Publish what is in the outbox, wait for its acks, disconnect. True if all was sent.

        `goodbye()` makes a last retained message, sent after the drain and before the
        DISCONNECT (which keeps the broker from publishing the will). Whatever is left
        stays in the outbox (it is not closed here) for the next start.
        """
        self._closing = True
        self._wake.set()
        deadline = time.monotonic() + drain_timeout_s
        clean = True
        task = self._task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), drain_timeout_s)
            except TimeoutError:
                task.cancel()
                clean = False
            except Exception:
                log.exception("%s: publisher failed", self._where())
                clean = False
        try:
            await asyncio.wait_for(self._all_acked.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            clean = False
        if not clean:
            log.error(
                "%s: closing after %g s with %d events unacknowledged; %d stay in the outbox",
                self._where(),
                drain_timeout_s,
                sum(len(f.rows) for f in self._in_flight.values()),
                self.outbox.depth(),
            )
        if goodbye is not None:
            try:
                if not await self.say_goodbye(goodbye()):
                    log.warning("%s: goodbye message not acknowledged", self._where())
            except Exception:
                log.exception("%s: could not send the goodbye message", self._where())
        await self._shutdown_client()
        return clean

    def publish_retained(self, topic: str, payload: bytes) -> bool:
        """Publish a retained QoS 1 message now, outside the outbox. False if not connected."""
        client = self._client
        if client is None or not self.connected:
            return False
        info = client.publish(topic, payload, qos=1, retain=True)
        # Its PUBACK is ignored by _acked (its mid is not ours); but if paho's mids have come
        # round to an unacknowledged batch's, that batch's PUBACK is now ambiguous.
        self._forget_mid(info.mid)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    async def say_goodbye(self, message: Message) -> bool:
        """Publish a retained message and wait (briefly) for its PUBACK, before disconnecting."""
        client = self._client
        if client is None or not self.connected:
            return False
        info = client.publish(message[0], message[1], qos=1, retain=True)
        self._forget_mid(info.mid)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        await asyncio.to_thread(info.wait_for_publish, GOODBYE_TIMEOUT_S)
        return info.is_published()

    def _forget_mid(self, mid: int) -> None:
        """paho's 16-bit mid came round while an older batch was still unacknowledged: its
        PUBACK can no longer be told apart, so send that batch again."""
        stale = self._in_flight.pop(self._by_mid.pop(mid, 0), None)
        if stale is not None:
            log.warning("%s: message id %d reused before its PUBACK", self._where(), mid)
            assert self._window is not None
            self._window.release()
            self.outbox.release([r.rowid for r in stale.rows], stale.kind)
            if not self._in_flight:
                self._all_acked.set()
            self._wake.set()

    async def _shutdown_client(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)

    async def _run(self) -> None:
        linger = self.config.linger_ms / 1000
        size = self.config.batch_max_events
        while True:
            self._wake.clear()
            due: float | None = None
            for kind in EVENT_KINDS:
                while True:
                    count, oldest = self.outbox.ready(kind, size)
                    if not count:
                        break
                    assert oldest is not None
                    ripe_at = oldest + linger
                    if count < size and time.time() < ripe_at and not self._closing:
                        due = ripe_at if due is None else min(due, ripe_at)
                        break
                    await self._publish(kind)
            if self._closing and not self._wake.is_set():
                return  # everything in the outbox has been handed to paho
            self.outbox.sync_if_due()
            waits = [d for d in (self.outbox.sync_due_in(),) if d is not None]
            if due is not None:
                waits.append(max(0.0, due - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(waits) if waits else None)

    async def _publish(self, kind: EventKind) -> None:
        assert self._window is not None and self._client is not None
        await self._window.acquire()  # waits while `max_in_flight` batches await their PUBACK
        rows = self.outbox.peek_batch(kind, self.config.batch_max_events)
        if not rows:
            self._window.release()
            return
        # The stored bodies are already contract JSON: splice them in rather than re-encode.
        head = json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "site": self.site,
                "gateway": self.gateway,
                "sent_at": datetime.now(UTC).isoformat(),
            }
        )
        payload = head[:-1].encode() + b', "events": [' + b",".join(r.body for r in rows) + b"]}"
        info = self._client.publish(event_topic(self.site, self.gateway, kind), payload, qos=1)
        # NO_CONN is fine: paho keeps the message and sends it when it has reconnected.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self._window.release()
            self.outbox.release([r.rowid for r in rows], kind)
            log.error("%s: could not queue a %s batch: %s", self._where(), kind, info.rc)
            # Do not spin on a client that refuses everything; the rows stay in the outbox.
            await asyncio.sleep(1.0)
            self._wake.set()
            return
        # The PUBACK cannot overtake this line: paho's callback only schedules _acked here.
        ours = next(self._ids)
        self._forget_mid(info.mid)
        self._by_mid[info.mid] = ours
        self._in_flight[ours] = _Flight(kind, rows, info.mid)
        self._all_acked.clear()

    def _acked(self, mid: int, reason: Any) -> None:
        ours = self._by_mid.pop(mid, None)
        flight = self._in_flight.pop(ours, None) if ours is not None else None
        if flight is None:
            return
        assert self._window is not None
        self._window.release()
        if not self._in_flight:
            self._all_acked.set()
        # A PUBACK with an error code is an answer too: the broker will never take this batch
        # (not authorised, too large...), so keeping it would block the queue for good.
        self.outbox.ack([r.rowid for r in flight.rows])
        if reason.is_failure:
            self.failed += len(flight.rows)
            log.error(
                "%s refused a batch of %d events: %s", self._where(), len(flight.rows), reason
            )
            return
        self.published += len(flight.rows)
        self.batches += 1
        if self.on_published is not None:
            try:
                self.on_published(_decode(flight.rows))
            except Exception:
                log.exception("on_published callback failed")

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
        self._to_loop(self._acked, mid, reason)

    def _paho_message(self, client: Any, userdata: Any, msg: Any) -> None:
        for pattern, handler in self.subscriptions.items():
            if mqtt.topic_matches_sub(pattern, msg.topic):
                self._to_loop(self._deliver, handler, msg.topic, msg.payload)

    def _deliver(self, handler: OnMessage, topic: str, payload: bytes) -> None:
        try:
            handler(payload)
        except Exception:
            log.exception("%s: handler for %s failed", self._where(), topic)

    def _on_connect(self, reason: Any, props: Any) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result((reason, props))
        elif not reason.is_failure:
            log.info("%s: reconnected", self._where())
        self.connected = not reason.is_failure
        if not self.connected or self._client is None:
            return
        for topic in self.subscriptions:
            self._client.subscribe(topic, qos=1)
        if self.on_connected is not None:
            try:
                self.on_connected()
            except Exception:
                log.exception("%s: on_connected callback failed", self._where())

    def _on_disconnect(self, reason: Any) -> None:
        if self.connected and not self._closing:
            log.warning("%s: disconnected (%s); paho will reconnect", self._where(), reason)
        self.connected = False


def _decode(rows: Sequence[Stored]) -> list[Event]:
    return [_event_adapter.validate_json(r.body) for r in rows]
