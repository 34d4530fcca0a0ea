"""Ingest counters, kept once and exposed both to Python callers and to Prometheus."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class IngestStats(Collector):
    """Thread-safe counters by table/kind; registers itself as a Prometheus collector."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self._lock = threading.Lock()
        self.received: Counter[str] = Counter()  # events, by event type
        self.stored: Counter[str] = Counter()  # rows, by table
        self.duplicates: Counter[str] = Counter()
        self.quarantined = 0  # messages or single events set aside
        self.messages = 0
        self.db_errors = 0
        self.verdicts = 0  # verdicts on scans sent to the docks
        # Tracking (positions moving orders), by what happened: positions_untracked (no
        # tracker row), fence_transitions, order_moves, delays_opened, fixes_rejected (too
        # late for the fence machine), tracking_failures, stale_trackers_opened.
        self.tracking: Counter[str] = Counter()
        self.pending = 0  # messages received and not yet acknowledged
        self.connected = False
        self.batch_events = Histogram(
            "tracklane_ingest_batch_events",
            "Events written per database transaction",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000),
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "tracklane_ingest_commit_seconds",
            "Time to COPY, insert and commit one batch",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        if registry is not None:
            registry.register(self)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def add_counts(
        self, *, received: Counter[str], stored: dict[str, int], duplicates: dict[str, int]
    ) -> None:
        with self._lock:
            self.received.update(received)
            self.stored.update(stored)
            self.duplicates.update(duplicates)

    def add_tracking(self, counts: dict[str, int]) -> None:
        with self._lock:
            self.tracking.update(counts)

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "messages": self.messages,
                "events_received": sum(self.received.values()),
                "events_stored": sum(self.stored.values()),
                "duplicates": sum(self.duplicates.values()),
                "quarantined": self.quarantined,
                "db_errors": self.db_errors,
                "verdicts_sent": self.verdicts,
                "pending_messages": self.pending,
                "broker_connected": self.connected,
                "tracking": dict(self.tracking),
            }

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        with self._lock:
            received = CounterMetricFamily(
                "tracklane_ingest_events_received", "Events decoded from MQTT", labels=["type"]
            )
            for key, value in self.received.items():
                received.add_metric([key], value)
            stored = CounterMetricFamily(
                "tracklane_ingest_events_stored", "Events newly stored", labels=["table"]
            )
            dups = CounterMetricFamily(
                "tracklane_ingest_events_duplicate",
                "Events already stored (redelivered or resent)",
                labels=["table"],
            )
            for key, value in self.stored.items():
                stored.add_metric([key], value)
            for key, value in self.duplicates.items():
                dups.add_metric([key], value)
            tracking = CounterMetricFamily(
                "tracklane_ingest_tracking",
                "What positions did: fence transitions, order moves, failures...",
                labels=["what"],
            )
            for key, value in self.tracking.items():
                tracking.add_metric([key], value)
            yield tracking
            yield received
            yield stored
            yield dups
            yield CounterMetricFamily(
                "tracklane_ingest_quarantined",
                "Messages or events quarantined",
                value=self.quarantined,
            )
            yield CounterMetricFamily(
                "tracklane_ingest_messages", "MQTT messages processed", value=self.messages
            )
            yield CounterMetricFamily(
                "tracklane_ingest_db_errors", "Failed batch writes (retried)", value=self.db_errors
            )
            yield CounterMetricFamily(
                "tracklane_ingest_verdicts", "Verdicts on scans sent to docks", value=self.verdicts
            )
            yield GaugeMetricFamily(
                "tracklane_ingest_pending_messages",
                "Received, not yet acknowledged",
                value=self.pending,
            )
            yield GaugeMetricFamily(
                "tracklane_ingest_broker_connected",
                "1 when connected to the broker",
                value=int(self.connected),
            )
