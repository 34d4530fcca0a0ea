"""Scans no order, package or product claimed: a dispatcher assigns each to its order or
dismisses it with a note. Either way it is resolved once, by whom and when."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from ingest_service.api.routers import Window
from orders.models import Ref

from .errors import Conflict, NotFound, Refused, utc

Note = Annotated[str, Field(min_length=1, max_length=2000)]


class UnmatchedFilter(Window):
    """`since`/`until`/`before` are on the time the scan was seen."""

    site: str | None = None
    gateway: str | None = None
    status: Literal["open", "assigned", "dismissed"] = "open"


class UnmatchedOut(BaseModel):
    event_id: UUID
    seen_at: datetime
    site: str
    gateway: str
    device: str
    code: str
    code_kind: str
    symbology: str | None
    door: str | None
    station: str | None
    stage: str | None
    reason: str
    status: str
    order_number: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None


class Assign(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    order: Ref = Field(description="the number of the order the scanned item belongs to")
    note: Note | None = None


class Dismiss(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: Note = Field(description="why it needs nothing (a stray label, a test scan...)")


COLUMNS = sql.SQL(
    "event_id, seen_at, site, gateway, device, code, code_kind, symbology, door, station,"
    " stage, reason, status, (SELECT number FROM orders o WHERE o.id = order_id)"
    " AS order_number, resolved_by, resolved_at, note"
)


async def _open_scan(conn: AsyncConnection[Any], event_id: UUID) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT u.*, o.number AS order_number FROM unmatched_scans u"
        " LEFT JOIN orders o ON o.id = u.order_id WHERE u.event_id = %s FOR UPDATE OF u",
        (event_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no unmatched scan {event_id}: GET /api/v1/unmatched lists open ones")
    if row["status"] != "open":
        to = f" to order {row['order_number']}" if row["order_number"] else ""
        raise Conflict(
            f"unmatched scan {event_id} was already {row['status']}{to} by"
            f" {row['resolved_by']} at {utc(row['resolved_at'])}"
        )
    return row


async def _resolved(conn: AsyncConnection[Any], event_id: UUID) -> UnmatchedOut:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        sql.SQL("SELECT {} FROM unmatched_scans WHERE event_id = %s").format(COLUMNS), (event_id,)
    )
    return UnmatchedOut.model_validate(await cur.fetchone())


async def assign_scan(
    conn: AsyncConnection[Any], event_id: UUID, a: Assign, *, actor: str
) -> UnmatchedOut:
    """Resolve a scan as belonging to an order; the order's history gets a note pointing at
    the scan (its event id and read point), so the evidence is kept with the order."""
    scan = await _open_scan(conn, event_id)
    cur = await conn.execute("SELECT id FROM orders WHERE number = %s", (a.order,))
    order = await cur.fetchone()
    if order is None:
        raise Refused(f"no order {a.order}: check the number, or dismiss the scan with a note")
    await conn.execute(
        "UPDATE unmatched_scans SET status = 'assigned', order_id = %s, resolved_by = %s,"
        " resolved_at = now(), note = %s WHERE event_id = %s",
        (order[0], actor, a.note, event_id),
    )
    read_point = {"site": scan["site"], "door": scan["door"], "station": scan["station"]}
    detail = {
        "unmatched_scan": {
            "code": scan["code"],
            "code_kind": scan["code_kind"],
            "seen_at": scan["seen_at"].isoformat(),
            "gateway": scan["gateway"],
            "device": scan["device"],
        },
        "note": a.note,
    }
    await conn.execute(
        "INSERT INTO order_events (order_id, kind, evidence_event_id, read_point, actor, detail)"
        " VALUES (%s, 'note', %s, %s, %s, %s)",
        (order[0], event_id, Jsonb(read_point), actor, Jsonb(detail)),
    )
    return await _resolved(conn, event_id)


async def dismiss_scan(
    conn: AsyncConnection[Any], event_id: UUID, d: Dismiss, *, actor: str
) -> UnmatchedOut:
    await _open_scan(conn, event_id)
    await conn.execute(
        "UPDATE unmatched_scans SET status = 'dismissed', resolved_by = %s,"
        " resolved_at = now(), note = %s WHERE event_id = %s",
        (actor, d.note, event_id),
    )
    return await _resolved(conn, event_id)
