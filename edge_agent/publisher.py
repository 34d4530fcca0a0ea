"""Events from a queue to MQTT: batched per topic kind, QoS 1, a bounded in-flight window.

paho runs its network loop in its own thread (`loop_start`); its callbacks only hand over
to the asyncio loop with `call_soon_threadsafe`, so all of this object's state is touched
from the event loop alone.

Delivery is at-least-once while this process lives: paho resends unacknowledged messages
after a reconnect (the session survives with `clean_start=False`). Events still queued or
unacknowledged when the process dies are lost until the durable outbox issue lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from event_contract import (
    KIND_OF_TYPE,
    SCHEMA_VERSION,
    Batch,
    Event,
    EventKind,
    encode,
    event_topic,
)
from mqtt_client import BrokerAddress, make_client

from .config import PublishConfig

log = logging.getLogger(__name__)

OnPublished = Callable[[list[Event]], None]
_STOP = object()  # queued by close(): everything queued before it is still published


class PublisherError(RuntimeError):
    pass


class Publisher:
    """`await start()`, put events on `queue`, `await close()`.

    `published` counts events the broker acknowledged (PUBACK); `on_published(events)` is
    called on the event loop after each acknowledged batch.
    """

    def __init__(
        self,
        *,
        site: str,
        gateway: str,
        broker: BrokerAddress,
        publish: PublishConfig | None = None,
        queue: asyncio.Queue[Any] | None = None,
        on_published: OnPublished | None = None,
        max_in_flight: int = 100,
        session_expiry_s: int = 3600,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.site = site
        self.gateway = gateway
        self.broker = broker
        self.config = publish or PublishConfig()
        self.queue: asyncio.Queue[Any] = queue if queue is not None else asyncio.Queue()
        self.on_published = on_published
        self.max_in_flight = max_in_flight
        self.session_expiry_s = session_expiry_s
        self.connect_timeout_s = connect_timeout_s
        self.published = 0
        self.batches = 0
        self.failed = 0  # events in batches the broker refused (PUBACK with an error code)
        self.connected = False
        self._closing = False
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connack: asyncio.Future[tuple[Any, Any]] | None = None
        self._window: asyncio.Semaphore | None = None
        self._in_flight: dict[int, list[Event]] = {}
        self._all_acked = asyncio.Event()
        self._all_acked.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The batching loop; it ends only after close(), or with an exception on a bug."""
        return self._task

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

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

    async def close(self, *, drain_timeout_s: float = 10.0) -> bool:
        """Publish what is queued, wait for its acks, disconnect. True if nothing was left."""
        self._closing = True
        deadline = time.monotonic() + drain_timeout_s
        clean = True
        task = self._task
        if task is not None and not task.done():

            async def drain() -> None:
                await self.queue.put(_STOP)  # may wait: the queue can be full if we are stuck
                await asyncio.shield(task)

            try:
                await asyncio.wait_for(drain(), drain_timeout_s)
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
                "%s: closing after %g s with %d events unacknowledged and about %d still queued",
                self._where(),
                drain_timeout_s,
                sum(len(e) for e in self._in_flight.values()),
                self.queue.qsize(),
            )
        await self._shutdown_client()
        return clean

    async def _shutdown_client(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)

    async def _run(self) -> None:
        linger = self.config.linger_ms / 1000
        pending: dict[EventKind, list[Event]] = {}
        deadlines: dict[EventKind, float] = {}
        while True:
            timeout = None
            if deadlines:
                timeout = max(0.0, min(deadlines.values()) - time.monotonic())
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout)
            except TimeoutError:
                item = None
            if item is _STOP:
                for kind in list(pending):
                    await self._publish(kind, pending.pop(kind))
                return
            if item is not None:
                kind = KIND_OF_TYPE[item.type]
                batch = pending.setdefault(kind, [])
                batch.append(item)
                deadlines.setdefault(kind, time.monotonic() + linger)
                if len(batch) >= self.config.batch_max_events:
                    deadlines.pop(kind)
                    await self._publish(kind, pending.pop(kind))
            now = time.monotonic()
            for kind, due in list(deadlines.items()):
                if due <= now:
                    deadlines.pop(kind)
                    await self._publish(kind, pending.pop(kind))

    async def _publish(self, kind: EventKind, events: Sequence[Event]) -> None:
        assert self._window is not None and self._client is not None
        await self._window.acquire()  # waits while `max_in_flight` batches await their PUBACK
        payload = encode(
            Batch(
                schema_version=SCHEMA_VERSION,
                site=self.site,
                gateway=self.gateway,
                sent_at=datetime.now(UTC),
                events=list(events),
            )
        )
        info = self._client.publish(event_topic(self.site, self.gateway, kind), payload, qos=1)
        # NO_CONN is fine: paho keeps the message and sends it when it has reconnected.
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self._window.release()
            self.failed += len(events)
            log.error("%s: could not queue a %s batch: %s", self._where(), kind, info.rc)
            return
        # The PUBACK cannot overtake this line: paho's callback only schedules _acked here.
        self._in_flight[info.mid] = list(events)
        self._all_acked.clear()

    def _acked(self, mid: int, reason: Any) -> None:
        events = self._in_flight.pop(mid, None)
        if events is None:
            return
        assert self._window is not None
        self._window.release()
        if not self._in_flight:
            self._all_acked.set()
        if reason.is_failure:
            self.failed += len(events)
            log.error("%s refused a batch of %d events: %s", self._where(), len(events), reason)
            return
        self.published += len(events)
        self.batches += 1
        if self.on_published is not None:
            try:
                self.on_published(events)
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

    def _on_connect(self, reason: Any, props: Any) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result((reason, props))
        elif not reason.is_failure:
            log.info("%s: reconnected", self._where())
        self.connected = not reason.is_failure

    def _on_disconnect(self, reason: Any) -> None:
        if self.connected and not self._closing:
            log.warning("%s: disconnected (%s); paho will reconnect", self._where(), reason)
        self.connected = False
