"""Receive from the broker, store, and only then acknowledge.

The MQTT 5 shared subscription (`$share/<group>/...`) lets several ingest processes split
the gateways' traffic. The session is persistent (clean start off, session expiry set) and
acknowledgements are manual: a QoS 1 message is PUBACKed only after the transaction that
stored it has committed. If this process dies first, the broker redelivers the message to
the session when it comes back, and the event_id key turns the repeat into a no-op.

Mosquitto keeps routing a share of the traffic to a member whose session is offline, and
holds it for that session. So each worker needs a stable client id (it comes back as
itself), and a worker retired for good is drained first (`drain`), which ends its session.

Threads: paho's network thread only queues what arrives; one writer thread decodes, writes
and acks, in arrival order (MQTT wants PUBACKs in the order the PUBLISHes came).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from event_contract import subscription
from geofence.state import FenceParams
from mqtt_client import BrokerAddress, make_client

from ..orders.matcher import ScanMatcher
from ..tracking import PositionTracker
from .processor import DatabaseNotReady, Inbound, Processor
from .stats import IngestStats

__all__ = ["ConsumerConfig", "DatabaseNotReady", "Inbound", "IngestConsumer"]
log = logging.getLogger(__name__)
STALLED_AFTER_S = 60.0  # a batch in hand this long makes health "degraded"
STALE_CHECK_EVERY_S = 60.0


@dataclass(frozen=True)
class ConsumerConfig:
    client_id: str
    share_group: str = "ingest"
    session_expiry_s: int = 7 * 24 * 3600
    receive_maximum: int = 2000
    batch_events: int = 5000
    linger_ms: int = 20
    max_future_s: int = 300
    ca_file: str | None = None
    # Match new scans to orders and answer each on its gateway's feedback topic.
    match_scans: bool = True
    # Follow vehicles by their trackers' positions: fences, ETAs, orders in transit, arriving
    # and arrived (Settings: arriving_eta_min, approach_radius_m, stale_tracker_min).
    track_positions: bool = True
    arriving_eta_min: float = 10.0
    approach_radius_m: float = 1_000.0
    stale_tracker_min: float = 10.0
    # The fence hysteresis (Settings: fence_min_dwell_s, fence_inner_margin_m, ...).
    fence_min_dwell_s: float = 60.0
    fence_inner_margin_m: float = 15.0
    fence_outer_margin_m: float = 30.0


class IngestConsumer:
    def __init__(
        self,
        *,
        broker: BrokerAddress,
        database_url: str,
        config: ConsumerConfig,
        stats: IngestStats,
    ):
        self.broker = broker
        self.config = config
        self.stats = stats
        self._inbox: queue.Queue[Inbound] = queue.Queue()
        self._stopping = threading.Event()
        # Acks must not cross a reconnect: generation and acks change under one lock.
        self._ack_lock = threading.Lock()
        self._generation = 0
        self._subscribed = False
        self._busy_since: float | None = None
        self._last_message = time.monotonic()
        self._writer_thread: threading.Thread | None = None
        self.processor = Processor(
            database_url,
            max_future_s=config.max_future_s,
            stats=stats,
            stopping=self._stopping,
            matcher=ScanMatcher() if config.match_scans else None,
            tracker=PositionTracker(
                arriving_eta_min=config.arriving_eta_min,
                approach_radius_m=config.approach_radius_m,
                fence_params=FenceParams(
                    inner_margin_m=config.fence_inner_margin_m,
                    outer_margin_m=config.fence_outer_margin_m,
                    min_dwell_s=config.fence_min_dwell_s,
                ),
            )
            if config.track_positions
            else None,
            stale_tracker_min=config.stale_tracker_min if config.track_positions else None,
        )
        self._stale_checked = time.monotonic()
        self.client, self._connect_props = make_client(
            broker,
            config.client_id,
            manual_ack=True,
            receive_maximum=config.receive_maximum,
            session_expiry_s=config.session_expiry_s,
            ca_file=config.ca_file,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- paho's thread -------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error(
                "ingest %s: broker %s refused the connection: %s",
                self.config.client_id,
                self.broker.redacted(),
                reason,
            )
            return
        with self._ack_lock:
            self._generation += 1
        self.stats.connected = True
        client.subscribe(
            [
                (f"$share/{self.config.share_group}/{subscription(kind)}", 1)  # type: ignore[arg-type]
                for kind in ("scans", "positions", "status")
            ]
        )
        log.info(
            "ingest %s connected to %s (session present: %s)",
            self.config.client_id,
            self.broker.redacted(),
            flags.session_present,
        )

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: list, _p: Any) -> None:
        refused = [str(c) for c in codes if c.is_failure]
        self._subscribed = not refused
        if refused:
            log.error(
                "ingest %s: the broker refused the subscription (%s); check the broker's "
                "ACL for this client and the share group name %r",
                self.config.client_id,
                ", ".join(refused),
                self.config.share_group,
            )

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.stats.connected = False
        if not self._stopping.is_set():
            log.warning(
                "ingest %s lost the broker (%s); paho reconnects and the broker "
                "redelivers what was not acked",
                self.config.client_id,
                reason,
            )

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # left unacked: the broker keeps it for this session
        self._last_message = time.monotonic()
        self._inbox.put(Inbound(msg.topic, msg.payload, msg.mid, msg.qos, self._generation))

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> IngestConsumer:
        self.processor.connect()  # fail fast at start; later outages are retried
        self.client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=30,
            clean_start=False,
            properties=self._connect_props,
        )
        self.client.loop_start()
        self._writer_thread = threading.Thread(
            target=self._run, name=f"ingest-writer-{self.config.client_id}", daemon=True
        )
        self._writer_thread.start()
        return self

    def stop(self, timeout: float = 10.0, *, end_session: bool = False) -> None:
        """Finish what has arrived (new arrivals wait at the broker), then disconnect.

        No unsubscribe: the persistent session keeps the subscription and the broker queues
        for it while this process is away, unless `end_session` ends the session for good.
        """
        self._stopping.set()
        if self._writer_thread:
            self._writer_thread.join(timeout)
        props = None
        if end_session:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()
        if not (self._writer_thread and self._writer_thread.is_alive()):
            self.processor.close()  # never under a writer that is still using it

    def drain(self, *, idle_s: float = 5.0, timeout_s: float = 3600.0) -> bool:
        """Take over a retired worker's session, store its backlog, and end the session.

        Returns True when the backlog was idle for `idle_s` before `timeout_s` ran out.
        """
        self.start()
        deadline = time.monotonic() + timeout_s
        drained = False
        while time.monotonic() < deadline:
            quiet = time.monotonic() - self._last_message
            if self.stats.connected and quiet > idle_s and self._idle():
                drained = True
                break
            time.sleep(0.2)
        self.stop(end_session=drained)
        return drained

    def _idle(self) -> bool:
        return self._inbox.empty() and self._busy_since is None

    def health(self) -> dict[str, object]:
        """`status` is "degraded" while the broker is away, the subscription was refused,
        or writes are failing or stalled."""
        busy = self._busy_since
        stalled = busy is not None and time.monotonic() - busy > STALLED_AFTER_S
        writes = "failing" if self.processor.write_failing else "stalled" if stalled else "ok"
        ok = self.stats.connected and self._subscribed and writes == "ok"
        return {
            "status": "ok" if ok else "degraded",
            "broker": "connected" if self.stats.connected else "disconnected",
            "subscription": "ok" if self._subscribed else "not subscribed",
            "database_writes": writes,
            **self.stats.snapshot(),
        }

    # -- writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        while (batch := self._collect()) is not None:
            if time.monotonic() - self._stale_checked >= STALE_CHECK_EVERY_S:
                self._stale_checked = time.monotonic()
                self.processor.check_stale_trackers()
            if not batch:
                continue
            self._busy_since = time.monotonic()
            self.stats.pending = self._inbox.qsize() + len(batch)
            if self.processor.process(batch):
                self._ack(batch)
                self._send_verdicts()
            self._busy_since = None
            self.stats.pending = self._inbox.qsize()

    def _collect(self) -> list[Inbound] | None:
        """Up to about batch_events events, waiting at most linger_ms after the first."""
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return None if self._stopping.is_set() else []
        batch = [first]
        deadline = time.monotonic() + self.config.linger_ms / 1000
        size = len(first.payload)
        # Payload bytes stand in for the event count (about 300 bytes an event), so that
        # batching needs no second parse.
        while size < self.config.batch_events * 300:
            remaining = deadline - time.monotonic()
            try:
                msg = (
                    self._inbox.get(timeout=remaining)
                    if remaining > 0
                    else self._inbox.get_nowait()
                )
            except queue.Empty:
                break
            batch.append(msg)
            size += len(msg.payload)
        return batch

    def _send_verdicts(self) -> None:
        """Verdicts on the scans just committed, to their gateways' feedback topics. Sent at
        QoS 1 after the commit: a crash in between loses the message, not the verdict, which
        stays in scan_outcomes for the dock screen."""
        for topic, payload in self.processor.take_verdicts():
            self.client.publish(topic, payload, qos=1)
            self.stats.add(verdicts=1)

    def _ack(self, batch: list[Inbound]) -> None:
        for msg in batch:
            if msg.qos == 0:
                continue
            with self._ack_lock:
                # A message from an earlier connection is redelivered on this one; acking
                # its old id here could ack a different, unstored message.
                if msg.generation == self._generation:
                    self.client.ack(msg.mid, msg.qos)
