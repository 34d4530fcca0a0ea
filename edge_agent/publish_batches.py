"""Batches from the outbox: which are ripe, their payload, and the pause after a refusal.

Pure apart from reading the outbox: no MQTT here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from event_contract import EVENT_KINDS, SCHEMA_VERSION, Event, EventKind

from .outbox import Outbox, Stored

_event_adapter: TypeAdapter[Any] = TypeAdapter(Event)


def ripe_kinds(
    outbox: Outbox, *, size: int, linger_s: float, flush: bool, now: float
) -> tuple[list[EventKind], float | None]:
    """Kinds with a batch to send now (full, overdue, or `flush`), and when the next ripens.

    A kind is listed once; the caller asks again after publishing its batch.
    """
    ripe: list[EventKind] = []
    due: float | None = None
    for kind in EVENT_KINDS:
        count, oldest = outbox.ready(kind, size)
        if not count:
            continue
        assert oldest is not None
        ripe_at = oldest + linger_s
        if count < size and now < ripe_at and not flush:
            due = ripe_at if due is None else min(due, ripe_at)
            continue
        ripe.append(kind)
    return ripe, due


def batch_payload(*, site: str, gateway: str, rows: Sequence[Stored]) -> bytes:
    """The contract's batch envelope around the stored event bodies."""
    # The stored bodies are already contract JSON: splice them in rather than re-encode.
    head = json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "site": site,
            "gateway": gateway,
            "sent_at": datetime.now(UTC).isoformat(),
        }
    )
    return head[:-1].encode() + b', "events": [' + b",".join(r.body for r in rows) + b"]}"


def decode(rows: Sequence[Stored]) -> list[Event]:
    return [_event_adapter.validate_json(r.body) for r in rows]


class RetryPause:
    """After a transient refusal, publishing pauses: doubling from `initial_s` to `max_s`,
    back to nothing after the next batch the broker accepts."""

    def __init__(self, initial_s: float = 1.0, max_s: float = 60.0) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.attempt = 0
        self.until = 0.0  # time.monotonic()

    def refused(self) -> float:
        """Start (or lengthen) the pause; returns its length in seconds."""
        delay = min(self.max_s, self.initial_s * 2 ** min(self.attempt, 16))
        self.attempt += 1
        self.until = time.monotonic() + delay
        return delay

    def accepted(self) -> None:
        self.attempt = 0

    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())
