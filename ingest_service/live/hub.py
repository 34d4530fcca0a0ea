"""The fan-out: notifications in, per-client queues out.

The listener hands the hub every notification that arrived together; the hub parses them
once, serialises each row once, and gives every client the items its filter passes. Vehicle
positions are first reduced to the newest per vehicle (compared on `last_fix_at`, which the
triggers write as fixed-width UTC text), so a client's pending dict can take them with one
`dict.update` and the newest fix always wins.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from ingest_service.auth.roles import Role

from .client_queue import ClientQueue
from .filters import STREAM_OF_KIND, Stream, VehicleBatch, matches
from .metrics import LiveMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveOptions:
    """Timings of the live stream; the defaults are the contract's, tests shorten them."""

    auth_timeout_s: float = 5.0  # for the first message, {"type": "auth", ...}
    recheck_s: float = 60.0  # credentials are checked again this often
    reconnect_min_s: float = 0.5  # the listener's backoff after losing the database...
    reconnect_max_s: float = 30.0  # ...doubling up to this
    keepalive_s: float = 30.0  # a quiet LISTEN connection is probed this often
    # Notifications are gathered this long before one fan-out round: the round's cost per
    # client is mostly fixed, so fewer, bigger rounds keep up under load.
    gather_s: float = 0.02


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode  # made once


class Hub:
    """Every connected client of this process and what each has yet to be sent."""

    def __init__(self, *, max_events: int, metrics: LiveMetrics | None = None) -> None:
        self.max_events = max_events
        self.clients: set[ClientQueue] = set()
        self.metrics = metrics or LiveMetrics()
        self.metrics.clients = lambda: len(self.clients)
        self._newest_fix: dict[str, str] = {}

    def connect(self, *, role: Role, username: str) -> ClientQueue:
        client = ClientQueue(
            role=role, username=username, max_events=self.max_events, metrics=self.metrics
        )
        self.clients.add(client)
        return client

    def disconnect(self, client: ClientQueue) -> None:
        self.clients.discard(client)

    def resync_all(self, reason: str) -> None:
        for client in self.clients:
            client.resync(reason)

    def publish(self, payloads: list[str]) -> None:
        """Fan one batch of `tracklane_live` payloads out to every client's queue."""
        if not self.clients:
            return
        vehicles: dict[str, tuple[dict[str, Any], str]] = {}
        events: list[tuple[Stream, dict[str, Any], str]] = []
        for payload in payloads:
            try:
                note = json.loads(payload)
                stream, rows = STREAM_OF_KIND[note["k"]], note["rows"]
            except (ValueError, KeyError, TypeError):
                log.warning("live: ignored a notification that is not ours: %.200s", payload)
                continue
            if stream is Stream.VEHICLES:
                self._newest_positions(rows, note.get("at"), vehicles)
            else:
                events.extend((stream, row, _dumps(row)) for row in rows)
        batch = VehicleBatch.build(vehicles) if vehicles else None
        for client in self.clients:
            if batch is not None:
                client.add_vehicles(batch.select(client.filter))
            for stream, row, item in events:
                if matches(stream, row, client.filter):
                    client.add_event(stream, item)

    def _newest_positions(
        self, rows: list[dict[str, Any]], at: int | None, into: dict[str, tuple[dict, str]]
    ) -> None:
        """Keep each vehicle's row only if its fix is no older than any seen before."""
        newest = self._newest_fix
        for row in rows:
            vid, fix = row.get("vehicle_id"), row.get("last_fix_at") or ""
            if vid is None or fix < newest.get(vid, ""):
                continue
            newest[vid] = fix
            row["at"] = at
            into[vid] = (row, _dumps(row))
