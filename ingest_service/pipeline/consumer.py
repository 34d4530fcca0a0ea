"""Receive from the broker, store, and only then acknowledge.

The MQTT 5 shared subscription (`$share/<group>/...`) lets several ingest processes split
the gateways' traffic. The session is persistent (clean start off, session expiry set) and
acknowledgements are manual: a QoS 1 message is PUBACKed only after the transaction that
stored it has committed. If this process dies first, the broker redelivers the message to
the session when it comes back, and the event_id key turns the repeat into a no-op.

Threads: paho's network thread only queues what arrives; one writer thread decodes, writes
and acks, in arrival order (MQTT wants PUBACKs in the order the PUBLISHes came).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from event_contract import decode, subscription
from mqtt_client import BrokerAddress, make_client

from ..storage.writer import BatchWriter, Quarantined, WriteResult
from .stats import IngestStats

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Inbound:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int  # which broker connection delivered it; acks go only to that one


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


class DatabaseNotReady(psycopg.OperationalError):
    """Reachable, but not usable for writing yet (no schema, no privilege): wait, retry."""


class _Stopping(Exception):
    pass


def _raise_stopping(_state: RetryCallState) -> None:
    raise _Stopping


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
        self.database_url = database_url
        self.config = config
        self.stats = stats
        self._inbox: queue.Queue[Inbound] = queue.Queue()
        self._generation = 0
        self._stopping = threading.Event()
        self._write_failing = False  # set while a batch is being retried against the database
        self._writer_thread: threading.Thread | None = None
        self._writer: BatchWriter | None = None
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
        self._generation += 1
        self.stats.connected = True
        topics = [
            (f"$share/{self.config.share_group}/{subscription(kind)}", 1)  # type: ignore[arg-type]
            for kind in ("scans", "positions", "status")
        ]
        client.subscribe(topics)
        log.info(
            "ingest %s connected to %s (session present: %s)",
            self.config.client_id,
            self.broker.redacted(),
            flags.session_present,
        )

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.stats.connected = False
        if not self._stopping.is_set():
            log.warning(
                "ingest %s lost the broker (%s); paho reconnects, unacked messages "
                "will be redelivered",
                self.config.client_id,
                reason,
            )

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.stats.add(pending=1)
        self._inbox.put(Inbound(msg.topic, msg.payload, msg.mid, msg.qos, self._generation))

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> IngestConsumer:
        self._writer = self._connect_db()  # fail fast at start; later outages are retried
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

    def stop(self, timeout: float = 10.0) -> None:
        """Write and ack what has arrived, then leave; the session keeps anything newer."""
        # No unsubscribe: the persistent session keeps the subscription, and the broker
        # queues for it while this process is away.
        self._stopping.set()
        if self._writer_thread:
            self._writer_thread.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        if self._writer:
            self._writer.conn.close()

    def health(self) -> dict[str, object]:
        """`status` is "degraded" while the broker is away or writes are failing."""
        snap = self.stats.snapshot()
        writing = not self._write_failing
        ok = self.stats.connected and writing
        return {
            "status": "ok" if ok else "degraded",
            "broker": "connected" if self.stats.connected else "disconnected",
            "database_writes": "ok" if writing else "failing",
            **snap,
        }

    # -- writer thread --------------------------------------------------------------------
    def _connect_db(self) -> BatchWriter:
        conn = psycopg.connect(self.database_url, autocommit=False, connect_timeout=10)
        try:
            return BatchWriter(conn)
        except psycopg.OperationalError:
            conn.close()
            raise
        except psycopg.Error as err:
            conn.close()
            raise DatabaseNotReady(
                f"database reachable but not ready for ingest ({err}); "
                "has `tracklane db migrate` run against it?"
            ) from err

    def _run(self) -> None:
        while True:
            batch = self._collect()
            if batch is None:
                return
            if batch:
                try:
                    self._process(batch)
                except Exception:
                    # Last resort: this thread must not die. The batch stays unacknowledged
                    # and the broker redelivers it when the session reconnects.
                    log.exception("ingest: unexpected error on a batch of %d messages", len(batch))
                    self.stats.add(db_errors=1)

    def _collect(self) -> list[Inbound] | None:
        """Up to batch_events events, waiting at most linger_ms after the first message."""
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return None if self._stopping.is_set() else []
        batch = [first]
        deadline = time.monotonic() + self.config.linger_ms / 1000
        size = len(first.payload)
        # Payload bytes stand in for event counts here: ~300 bytes an event.
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

    def _process(self, batch: list[Inbound]) -> None:
        now = datetime.now(UTC)
        max_future = timedelta(seconds=self.config.max_future_s)
        events: list[tuple[str, str, Any]] = []
        rejects: list[Quarantined] = []
        received: Counter[str] = Counter()
        for msg in batch:
            decoded = decode(msg.topic, msg.payload, now=now, max_future=max_future)
            topic = decoded.topic
            for event in decoded.events:
                received[event.type] += 1
                events.append((topic.site, topic.gateway, event))  # type: ignore[union-attr]
            for reject in decoded.rejects:
                rejects.append(
                    Quarantined(msg.topic, reject.reason, reject.raw, reject.event_index)
                )
                log.warning("quarantined from %s: %s", msg.topic, reject.reason)
        started = time.perf_counter()
        try:
            try:
                result = self._write_with_retry(events, rejects)
            except (psycopg.OperationalError, _Stopping):
                raise
            except Exception as err:
                # The database (or the driver) refused the data itself, not the connection:
                # find the message that carries it and quarantine that one alone.
                log.error("ingest: database refused a batch (%s); writing message by message", err)
                result = self._write_each(batch, now, max_future)
        except _Stopping:
            log.warning(
                "ingest stopping with the database unavailable: %d messages left "
                "unacknowledged for the broker to redeliver",
                len(batch),
            )
            return
        self.stats.commit_seconds.observe(time.perf_counter() - started)
        self.stats.batch_events.observe(len(events))
        self.stats.add_counts(received=received, stored=result.stored, duplicates=result.duplicates)
        self.stats.add(quarantined=result.quarantined, messages=len(batch), pending=-len(batch))
        generation = self._generation
        for msg in batch:
            # A message from an earlier connection has been redelivered on this one (same
            # session); acking its old id here could ack a different message.
            if msg.generation == generation and msg.qos > 0:
                self.client.ack(msg.mid, msg.qos)

    def _write_with_retry(
        self, events: list[tuple[str, str, Any]], rejects: list[Quarantined]
    ) -> WriteResult:
        def before_sleep(state: RetryCallState) -> None:
            self._write_failing = True
            self.stats.add(db_errors=1)
            log.error(
                "ingest: database write failed (%s); holding %d events, retrying in %.1fs",
                state.outcome.exception() if state.outcome else "?",
                len(events),
                state.next_action.sleep if state.next_action else 0,
            )

        def stop_when_stopping(state: RetryCallState) -> bool:
            return self._stopping.is_set() and state.attempt_number > 3

        for attempt in Retrying(
            retry=retry_if_exception_type(psycopg.OperationalError),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_when_stopping,
            before_sleep=before_sleep,
            retry_error_callback=_raise_stopping,
        ):
            with attempt:
                if self._writer is None or self._writer.conn.closed:
                    self._writer = self._connect_db()
                try:
                    result = self._writer.write(events, rejects)
                    self._write_failing = False
                    return result
                except psycopg.OperationalError:
                    self._writer.conn.close()
                    raise
        raise AssertionError("unreachable")

    def _write_each(
        self, batch: list[Inbound], now: datetime, max_future: timedelta
    ) -> WriteResult:
        """Write message by message; quarantine, whole, each one the database refuses."""
        total = WriteResult()
        for msg in batch:
            decoded = decode(msg.topic, msg.payload, now=now, max_future=max_future)
            topic = decoded.topic
            events = [(topic.site, topic.gateway, e) for e in decoded.events]  # type: ignore[union-attr]
            rejects = [
                Quarantined(msg.topic, r.reason, r.raw, r.event_index) for r in decoded.rejects
            ]
            try:
                result = self._write_with_retry(events, rejects)
            except (psycopg.OperationalError, _Stopping):
                raise
            except Exception as err:
                detail = getattr(getattr(err, "diag", None), "message_primary", None) or err
                reason = f"database refused the message: {detail}"
                log.warning("quarantined from %s: %s", msg.topic, reason)
                result = self._write_with_retry([], [Quarantined(msg.topic, reason, msg.payload)])
            total.merge(result)
        return total
