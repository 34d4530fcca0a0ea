"""Exceptions are records, not log lines: their kinds and the states they go through. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class ExceptionKind(StrEnum):
    DELAY = "delay"
    DAMAGE = "damage"
    WRONG_LOAD = "wrong_load"
    SHORT_LOAD = "short_load"
    UNMATCHED_SCAN = "unmatched_scan"
    STALE_TRACKER = "stale_tracker"
    OVERSELL = "oversell"
    LOW_STOCK = "low_stock"
    OTHER = "other"
    # Receiving against an ASN (inbound, docs/inbound.md).
    OVER_RECEIPT = "over_receipt"
    SHORT_RECEIPT = "short_receipt"
    UNEXPECTED_ITEM = "unexpected_item"


class ExceptionStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# Status -> the statuses a person may move it to. Resolved is final: a recurrence is a new one.
EXCEPTION_TABLE: Mapping[ExceptionStatus, frozenset[ExceptionStatus]] = MappingProxyType(
    {
        ExceptionStatus.OPEN: frozenset({ExceptionStatus.ACKNOWLEDGED, ExceptionStatus.RESOLVED}),
        ExceptionStatus.ACKNOWLEDGED: frozenset({ExceptionStatus.RESOLVED}),
        ExceptionStatus.RESOLVED: frozenset(),
    }
)


def exception_move(status: ExceptionStatus, target: ExceptionStatus) -> str | None:
    """None if `status` may move to `target`; otherwise why not, for the API to show."""
    if target in EXCEPTION_TABLE[status]:
        return None
    if status is ExceptionStatus.RESOLVED:
        return "the exception is resolved; open a new one if the problem is back"
    return f"an exception that is {status} cannot become {target}"
