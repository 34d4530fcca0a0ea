"""Events from the durable outbox to MQTT: batched per topic kind, QoS 1, a bounded window.

Delivery is at-least-once across crashes: events are in the outbox before `submit` returns,
a row is deleted only after the broker's PUBACK for its batch, and on start whatever is still
in the outbox is sent first, oldest first, so each device's events keep their order. paho
resends unacknowledged batches after a reconnect (the session survives with
`clean_start=False`); after a restart the outbox resends them, and ingest drops duplicates.

A PUBACK with an error code is handled by `publish_policy`: transient refusals go back to
the outbox and publishing pauses with backoff (a retried batch may then arrive after newer
ones; ingest orders by seq); permanent ones (not authorized) move to the outbox's quarantine.

The parts: `publish_session` (the MQTT connection, will, subscriptions, retained messages),
`publish_window` (batches awaiting their PUBACK), `publish_batches` (what to send and how).
All of it runs on the event loop; the outbox is SQLite on that one thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping

import paho.mqtt.client as mqtt

from event_contract import Event, EventKind, event_topic
from mqtt_client import BrokerAddress

from .config import PublishConfig
from .outbox import Outbox
from .publish_batches import RetryPause, batch_payload, decode, ripe_kinds
from .publish_policy import Verdict, puback_verdict
from .publish_session import Message, MqttSession, OnMessage, PublisherError
from .publish_window import Flight, InFlight

__all__ = ["Message", "OnMessage", "OnPublished", "Publisher", "PublisherError"]

log = logging.getLogger(__name__)

OnPublished = Callable[[list[Event]], None]


class Publisher:
    """`await start()`, `submit(events)`, `await close()`.

    `published` counts events the broker acknowledged (PUBACK); `on_published(events)` is
    called on the event loop after each acknowledged batch. Without an `outbox` the
    publisher keeps one in memory, which a crash loses. `failed` counts events the broker
    refused for good (quarantined), `retried` events it refused for now (sent again).

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
        retry: RetryPause | None = None,
    ) -> None:
        self.site = site
        self.gateway = gateway
        self.broker = broker
        self.config = publish or PublishConfig()
        self.outbox = outbox if outbox is not None else Outbox(":memory:")
        self.on_published = on_published
        self.published = 0
        self.batches = 0
        self.failed = 0  # events in batches the broker refused for good (quarantined)
        self.retried = 0  # events in batches the broker refused for now
        self.retry = retry or RetryPause()
        self._window = InFlight()
        # Gateway names are unique within a site only; two sessions with one client id
        # would keep taking each other over.
        self.session = MqttSession(
            client_id=f"edge-{site}-{gateway}",
            gateway=gateway,
            broker=broker,
            on_puback=self._acked,
            reuse_mid=self._reuse_mid,
            max_in_flight=max_in_flight,
            session_expiry_s=session_expiry_s,
            connect_timeout_s=connect_timeout_s,
            will=will,
            on_connected=on_connected,
            subscriptions=subscriptions,
        )
        self._closing = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The batching loop; it ends only after close(), or with an exception on a bug."""
        return self._task

    @property
    def client(self) -> mqtt.Client | None:
        return self.session.client

    @property
    def connected(self) -> bool:
        return self.session.connected

    @property
    def in_flight(self) -> int:
        return len(self._window)

    def submit(self, events: Iterable[Event]) -> int:
        """Store events in the outbox (durably, before returning) and wake the batching loop.

        Returns how many were kept: fewer only under the `refuse_new` overflow policy.
        """
        kept = self.outbox.append(events)
        self._wake.set()
        return kept

    def _where(self) -> str:
        return self.session.where()

    async def start(self) -> None:
        """Connect (raising PublisherError with the reason if that fails) and start batching."""
        self._window.open(await self.session.start())
        self._task = asyncio.create_task(self._run(), name=f"publisher-{self.gateway}")

    async def close(
        self, *, drain_timeout_s: float = 10.0, goodbye: Callable[[], Message] | None = None
    ) -> bool:
        """Publish what is in the outbox, wait for its acks, disconnect. True if all was sent.

        `goodbye()` makes a last retained message, sent after the drain and before the
        DISCONNECT (which keeps the broker from publishing the will). Whatever is left
        stays in the outbox (it is not closed here) for the next start.
        """
        self._closing = self.session.closing = True
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
            remaining = max(0.0, deadline - time.monotonic())
            await asyncio.wait_for(self._window.all_acked.wait(), remaining)
        except TimeoutError:
            clean = False
        if not clean or self.outbox.depth():
            clean = False
            log.error(
                "%s: closing after %g s with %d events unacknowledged; %d stay in the outbox",
                self._where(),
                drain_timeout_s,
                self._window.events(),
                self.outbox.depth(),
            )
        if goodbye is not None:
            try:
                if not await self.session.say_goodbye(goodbye()):
                    log.warning("%s: goodbye message not acknowledged", self._where())
            except Exception:
                log.exception("%s: could not send the goodbye message", self._where())
        await self.session.stop()
        return clean

    def publish_retained(self, topic: str, payload: bytes) -> bool:
        """Publish a retained QoS 1 message now, outside the outbox. False if not connected."""
        return self.session.publish_retained(topic, payload)

    async def say_goodbye(self, message: Message) -> bool:
        """Publish a retained message and wait (briefly) for its PUBACK."""
        return await self.session.say_goodbye(message)

    def _reuse_mid(self, mid: int) -> None:
        self._send_again(self._window.reuse(mid))

    def _send_again(self, stale: Flight | None) -> None:
        if stale is None:
            return
        log.warning("%s: message id %d reused before its PUBACK", self._where(), stale.mid)
        self.outbox.release([r.rowid for r in stale.rows], stale.kind)
        self._wake.set()

    async def _run(self) -> None:
        linger = self.config.linger_ms / 1000
        size = self.config.batch_max_events
        while True:
            self._wake.clear()
            pause = self.retry.remaining()
            due: float | None = None
            if not pause:
                ripe, due = ripe_kinds(
                    self.outbox, size=size, linger_s=linger, flush=self._closing, now=time.time()
                )
                if ripe:
                    for kind in ripe:
                        await self._publish(kind)
                    continue
            if self._closing and not self._wake.is_set() and not pause:
                return  # everything in the outbox has been handed to paho
            if self._closing and pause and self._window.all_acked.is_set():
                return  # refused for now: what is left stays in the outbox for next time
            self.outbox.sync_if_due()
            waits = [d for d in (self.outbox.sync_due_in(),) if d is not None]
            if due is not None:
                waits.append(max(0.0, due - time.time()))
            if pause:
                waits.append(pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(waits) if waits else None)

    async def _publish(self, kind: EventKind) -> None:
        await self._window.acquire()  # waits while `max_in_flight` batches await their PUBACK
        if self.retry.remaining():
            self._window.release()  # refused while we waited: the loop waits out the pause
            return
        rows = self.outbox.peek_batch(kind, self.config.batch_max_events)
        if not rows:
            self._window.release()
            return
        payload = batch_payload(site=self.site, gateway=self.gateway, rows=rows)
        rc, mid = self.session.publish(event_topic(self.site, self.gateway, kind), payload)
        # NO_CONN is fine: paho keeps the message and sends it when it has reconnected.
        if rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self._window.release()
            self.outbox.release([r.rowid for r in rows], kind)
            log.error("%s: could not queue a %s batch: %s", self._where(), kind, rc)
            # Do not spin on a client that refuses everything; the rows stay in the outbox.
            await asyncio.sleep(1.0)
            self._wake.set()
            return
        # The PUBACK cannot overtake this line: paho's callback only schedules _acked here.
        self._send_again(self._window.add(mid, kind, rows))

    def _acked(self, mid: int, code: int) -> None:
        flight = self._window.take(mid)
        if flight is None:
            return
        rowids = [r.rowid for r in flight.rows]
        verdict, name = puback_verdict(code)
        if verdict is not Verdict.DELIVERED:
            what = f"{self._where()} refused a {flight.kind} batch of {len(rowids)} events"
            why = f"0x{code:02X} {name}"
            if verdict is Verdict.QUARANTINE:
                self.outbox.quarantine(rowids, reason=code)
                self.failed += len(rowids)
                held = self.outbox.quarantined()
                log.error("%s for good (%s); kept in quarantine (%d there)", what, why, held)
            else:
                self.outbox.release(rowids, flight.kind)
                self.retried += len(rowids)
                log.warning("%s for now (%s); retry in %.1f s", what, why, self.retry.refused())
                self._wake.set()
            return
        self.outbox.ack(rowids)
        self.retry.accepted()
        self.published += len(rowids)
        self.batches += 1
        if self.on_published is not None:
            try:
                self.on_published(decode(flight.rows))
            except Exception:
                log.exception("on_published callback failed")
