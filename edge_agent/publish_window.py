"""The bounded window of batches published and not yet acknowledged.

At most `size` batches await their PUBACK (the broker's Receive Maximum, or less). Batches
are known by our own ids: paho's 16-bit mids wrap, and a mid that comes round while an older
batch is still unacknowledged makes that batch's PUBACK ambiguous, so the window gives it up
(`reuse`) and the publisher sends it again.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

from event_contract import EventKind

from .outbox import Stored


@dataclass(slots=True)
class Flight:
    """A batch published and not yet acknowledged."""

    kind: EventKind
    rows: list[Stored]
    mid: int


class InFlight:
    """`await acquire()` a slot, `add(mid, ...)` once published, `take(mid)` on its PUBACK."""

    def __init__(self) -> None:
        self._slots: asyncio.Semaphore | None = None
        self._flights: dict[int, Flight] = {}  # by our id
        self._by_mid: dict[int, int] = {}  # paho mid -> our id, while in flight
        self._ids = itertools.count(1)
        self.all_acked = asyncio.Event()
        self.all_acked.set()

    def open(self, size: int) -> None:
        self._slots = asyncio.Semaphore(size)

    def __len__(self) -> int:
        return len(self._flights)

    def events(self) -> int:
        return sum(len(f.rows) for f in self._flights.values())

    async def acquire(self) -> None:
        """Waits while the window is full."""
        assert self._slots is not None, "open() the window first"
        await self._slots.acquire()

    def release(self) -> None:
        """Give back a slot acquired for a batch that was not published after all."""
        assert self._slots is not None
        self._slots.release()

    def add(self, mid: int, kind: EventKind, rows: list[Stored]) -> Flight | None:
        """Track a published batch; returns an older batch its mid made ambiguous, if any."""
        stale = self.reuse(mid)
        ours = next(self._ids)
        self._by_mid[mid] = ours
        self._flights[ours] = Flight(kind, rows, mid)
        self.all_acked.clear()
        return stale

    def take(self, mid: int) -> Flight | None:
        """The batch this PUBACK answers (None if not one of ours); frees its slot."""
        ours = self._by_mid.pop(mid, None)
        flight = self._flights.pop(ours, None) if ours is not None else None
        if flight is not None:
            self._done()
        return flight

    def reuse(self, mid: int) -> Flight | None:
        """`mid` is taken by a new message: give up the batch it named, to be sent again."""
        stale = self._flights.pop(self._by_mid.pop(mid, 0), None)
        if stale is not None:
            self._done()
        return stale

    def _done(self) -> None:
        assert self._slots is not None
        self._slots.release()
        if not self._flights:
            self.all_acked.set()
