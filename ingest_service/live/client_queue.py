"""What one live client has yet to be sent, bounded whatever the client's speed.

Vehicle positions wait in a dict keyed by vehicle id, so a client that reads slowly gets the
newest position of each vehicle and never a backlog. Other items wait in a bounded queue;
on overflow the oldest go and the client is told to `resync` (re-read the REST endpoints)
with the count. Items arrive already serialised (made once per notification row and shared
by every client), so a frame is a join of strings.

The hub's batches of positions are kept as read-only layers, not copied into the client's
dict: a client that keeps up (one batch per flush) frames the hub's shared dict as it is,
and copying 10,000 positions into each of 100 clients' dicts would cost more than all the
rest of the fan-out. Past `MAX_LAYERS` the layers are merged (newest wins), so memory stays
bounded by the fleet's size whatever the client's speed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable

from ingest_service.auth.roles import Role

from .filters import Filter, Stream, default_filter
from .metrics import LiveMetrics

MAX_LAYERS = 8


def _ms() -> int:
    return int(time.time() * 1000)


class ClientQueue:
    """One client's filter, pending items and control messages; its writer task drains it.

    Not thread-safe: the hub and the writer run on one event loop.
    """

    def __init__(
        self, *, role: Role, username: str, max_events: int, metrics: LiveMetrics | None = None
    ) -> None:
        self.role = role
        self.username = username
        self.filter: Filter = default_filter(role)
        self.max_events = max_events
        self.metrics = metrics or LiveMetrics()
        self._layers: list[dict[str, str]] = []  # positions by vehicle id, oldest layer first
        self.events: deque[tuple[Stream, str]] = deque()
        self.dropped = 0  # events dropped since the last flush
        self.resync_reason: str | None = None
        self.control: deque[str] = deque()  # ready, subscribed, error: sent before any frame
        self.close: tuple[int, str] | None = None  # the code and reason to close with
        self.wake = asyncio.Event()

    def add_vehicles(self, items: dict[str, str]) -> None:
        """Queue positions by vehicle id (newer replace older). `items` is not copied and
        must not change afterwards."""
        if not items:
            return
        self._layers.append(items)
        if len(self._layers) > MAX_LAYERS:
            self._merge()
        self.wake.set()

    @property
    def vehicles(self) -> dict[str, str]:
        """The pending positions, newest per vehicle."""
        self._merge()
        return self._layers[0] if self._layers else {}

    def _merge(self) -> None:
        if len(self._layers) < 2:
            return
        merged: dict[str, str] = {}
        for layer in self._layers:
            merged.update(layer)
        self.metrics.items_coalesced += sum(map(len, self._layers)) - len(merged)
        self._layers = [merged]

    def add_event(self, stream: Stream, item: str) -> None:
        """Queue one event; when the queue is full the oldest goes and a resync is due."""
        if len(self.events) >= self.max_events:
            self.events.popleft()
            self.dropped += 1
            self.metrics.items_dropped += 1
        self.events.append((stream, item))
        self.wake.set()

    def send_control(self, message: dict[str, object]) -> None:
        self.control.append(json.dumps(message, separators=(",", ":")))
        self.wake.set()

    def resync(self, reason: str) -> None:
        """Tell the client, at the next flush, that it missed changes and should re-read."""
        self.resync_reason = reason
        self.wake.set()

    def close_with(self, code: int, reason: str) -> None:
        self.close = (code, reason)
        self.wake.set()

    def take_control(self) -> list[str]:
        messages = list(self.control)
        self.control.clear()
        return messages

    @property
    def has_frames(self) -> bool:
        return bool(self._layers or self.events or self.dropped or self.resync_reason)

    def take_frames(self, now_ms: int | None = None) -> list[str]:
        """Everything pending as messages: a resync first if one is due, then one frame per
        stream (vehicles first), and empties the queue."""
        sent_at = _ms() if now_ms is None else now_ms
        out: list[str] = []
        if self.dropped or self.resync_reason:
            reasons = [self.resync_reason] if self.resync_reason else []
            if self.dropped:
                reasons.append(
                    f"{self.dropped} events dropped: this client read slower than they came"
                )
            out.append(
                json.dumps(
                    {
                        "type": "resync",
                        "reason": "; ".join(reasons) + "; re-read the REST endpoints",
                        "dropped": self.dropped,
                    },
                    separators=(",", ":"),
                )
            )
            self.dropped, self.resync_reason = 0, None
        if self._layers:
            out.append(_frame(Stream.VEHICLES, self.vehicles.values(), sent_at))
            self._layers = []
        if self.events:
            by_stream: dict[Stream, list[str]] = {}
            for stream, item in self.events:
                by_stream.setdefault(stream, []).append(item)
            self.events.clear()
            out.extend(_frame(s, items, sent_at) for s, items in by_stream.items())
        return out


def _frame(stream: Stream, items: Iterable[str], sent_at: int) -> str:
    joined = ",".join(items)
    return f'{{"type":"{stream.value}","items":[{joined}],"sent_at":{sent_at}}}'
