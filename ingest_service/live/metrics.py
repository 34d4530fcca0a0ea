"""The live stream's Prometheus metrics, kept as plain numbers and collected on scrape.

A collector rather than prometheus_client Counters: the hub bumps counters a million times a
second under load, and a plain integer add is the cheapest way to do it. The collector is
registered while the app runs and removed when it stops, so apps created one after another
in a test process can share a registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class LiveMetrics(Collector):
    """Counts for `/metrics`; `clients` is read from the hub when scraped."""

    def __init__(self, clients: Callable[[], int] = lambda: 0) -> None:
        self.clients = clients
        self.frames_sent = 0
        self.items_coalesced = 0
        self.items_dropped = 0
        self.listener_connected = False
        self._registry: CollectorRegistry | None = None

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "tracklane_live_clients", "WebSocket clients on /api/v1/live", value=self.clients()
        )
        yield CounterMetricFamily(
            "tracklane_live_frames_sent", "Frames sent to live clients", value=self.frames_sent
        )
        yield CounterMetricFamily(
            "tracklane_live_items_coalesced",
            "Vehicle positions replaced by a newer one before a slow client was sent them",
            value=self.items_coalesced,
        )
        yield CounterMetricFamily(
            "tracklane_live_items_dropped",
            "Events dropped from a full client queue (the client was told to resync)",
            value=self.items_dropped,
        )
        yield GaugeMetricFamily(
            "tracklane_live_listener_connected",
            "1 while the LISTEN connection to the database is up",
            value=int(self.listener_connected),
        )

    def register(self, registry: CollectorRegistry) -> None:
        try:
            registry.register(self)
        except ValueError:
            # Another app in this process already exports live metrics to this registry
            # (tests start several); pass each app its own registry to see both.
            log.warning("live metrics not exported: the registry already has tracklane_live_*")
            return
        self._registry = registry

    def unregister(self) -> None:
        if self._registry is not None:
            self._registry.unregister(self)
            self._registry = None
