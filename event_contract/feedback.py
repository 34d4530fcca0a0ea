"""Dock feedback: the verdict on one scan, sent back to the gateway that read it.

Published (QoS 1, not retained) on `feedback_topic(site, gateway)` by whatever judges scans
(ingest's order matching, later); the gateway also makes verdicts of its own for scans it
refused before they became events (a bad check digit), so the dock hears about them at once.
Pure: no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .events import Name, ReadPoint, Text

FEEDBACK_SCHEMA_VERSION = 1


class VerdictKind(StrEnum):
    ACCEPTED = "accepted"
    WRONG_ORDER = "wrong_order"
    WRONG_TRUCK = "wrong_truck"
    WRONG_DOOR = "wrong_door"
    ALREADY_DISPATCHED = "already_dispatched"
    ORDER_CANCELLED = "order_cancelled"
    DUPLICATE = "duplicate"
    UNKNOWN_CODE = "unknown_code"
    BAD_CHECK_DIGIT = "bad_check_digit"
    INVALID_CODE = "invalid_code"  # not a valid GS1 element string, GTIN...


class Verdict(BaseModel):
    """What the dock is told about one scan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = FEEDBACK_SCHEMA_VERSION
    # None when the gateway refused the scan itself: it never became an event.
    event_id: UUID | None = None
    device: Name
    read_point: ReadPoint | None = None
    verdict: VerdictKind
    message: Text = Field(default="", max_length=500)
    code: Text | None = Field(default=None, max_length=256, description="the data as scanned")
    order_ref: Text | None = Field(default=None, max_length=128)
    package_ref: Text | None = Field(default=None, max_length=128)
    decided_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    # "gateway": decided locally, without a round trip; "server": by whoever judged the event.
    origin: Literal["gateway", "server"] = "server"

    @property
    def ok(self) -> bool:
        """A go-ahead: accepted, or a harmless repeat (already where it belongs)."""
        return self.verdict in (VerdictKind.ACCEPTED, VerdictKind.DUPLICATE)
