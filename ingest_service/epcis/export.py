"""One page of EPCIS events: read the three sources, merge them in time order, build events."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from epcis import (
    Locations,
    MilestoneRow,
    ReceiptRow,
    ScanRow,
    document,
    milestone_event,
    receipt_event,
    scan_event,
)
from ingest_service.api.routers import encode_cursor
from ingest_service.dispatch.errors import Refused

from .queries import Keyed, Window, asn_exists, milestones, order_exists, receipts, scans


@dataclass(frozen=True, slots=True)
class Page:
    document: dict[str, Any]
    next_token: str | None


def _event(row: Any, where: Locations) -> dict[str, Any] | None:
    if isinstance(row, ScanRow):
        return scan_event(row, where)
    if isinstance(row, ReceiptRow):
        return receipt_event(row, where)
    if isinstance(row, MilestoneRow):
        return milestone_event(row, where)
    raise TypeError(f"no EPCIS builder for {type(row).__name__}")


async def export_page(conn: AsyncConnection[Any], w: Window, *, where: Locations) -> Page:
    """The EPCISDocument of the first `w.limit` events in the window, oldest first, and the
    token of the next page when there is more."""
    if w.start is not None and w.end is not None and w.end <= w.start:
        raise Refused(f"'to' ({w.end.isoformat()}) must be after 'from' ({w.start.isoformat()})")
    if w.order is not None and not await order_exists(conn, w.order):
        raise Refused(f"no order {w.order}: give an order number as GET /api/v1/orders lists it")
    if w.asn is not None and not await asn_exists(conn, w.asn):
        raise Refused(f"no ASN {w.asn}: give an ASN number as the inbound API lists it")
    sources: list[list[Keyed]] = [
        await scans(conn, w),
        await receipts(conn, w),
        await milestones(conn, w),
    ]
    merged = list(heapq.merge(*sources, key=lambda k: (k[0], k[1])))
    page, more = merged[: w.limit], len(merged) > w.limit
    events = [e for _, _, row in page if (e := _event(row, where)) is not None]
    next_token = encode_cursor(page[-1][0], page[-1][1]) if more else None
    return Page(document(events, datetime.now(UTC)), next_token)
