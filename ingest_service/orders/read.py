"""Reading orders: one with everything about it, or a filtered, searchable page of them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ingest_service.api.routers import decode_cursor, encode_cursor
from orders.lifecycle import OrderState

MAX_PAGE = 1000


class LineOut(BaseModel):
    line_no: int
    sku: str
    quantity: int
    unit_price: Decimal


class PackageOut(BaseModel):
    id: int
    sscc: str
    epc: str | None
    state: str
    loaded_trip: str | None
    loaded_at: datetime | None


class CustomerOut(BaseModel):
    ref: str
    name: str
    email: str | None
    phone: str | None
    notify_email: bool
    notify_sms: bool


class OrderSummary(BaseModel):
    id: int
    number: str
    type: str
    state: str
    customer_ref: str
    customer_name: str
    priority: int
    dest_address: str
    window_start: datetime | None
    window_end: datetime | None
    trip_id: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    open_exceptions: int
    exception_flags: list[str] = Field(
        description="kinds of the order's open exceptions, beside its state (e.g. delay)"
    )


class OrderOut(OrderSummary):
    notes: str | None
    dest_lat: float | None
    dest_lon: float | None
    dest_radius_m: float | None
    created_by: str
    customer: CustomerOut
    lines: list[LineOut]
    packages: list[PackageOut]


class OrderFilter(BaseModel):
    """Query parameters for the order list; every one narrows it. Unknown names are refused."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(None, max_length=100, description="order number or customer prefix")
    state: list[OrderState] | None = Field(None, description="any of these states")
    type: str | None = None
    customer: str | None = Field(None, description="customer ref, exactly")
    trip: str | None = None
    priority_at_least: int | None = Field(None, ge=0, le=9)
    created_since: AwareDatetime | None = None
    created_until: AwareDatetime | None = None
    due_before: AwareDatetime | None = Field(None, description="window ends before this")
    has_open_exceptions: bool | None = None
    sku: str | None = Field(None, description="orders with a line of this product")
    cursor: str | None = None
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    order: Literal["newest", "oldest"] = "newest"


_SUMMARY = sql.SQL(
    "o.id, o.number, o.type, o.state, c.ref AS customer_ref, c.name AS customer_name,"
    " o.priority, o.dest_address, o.window_start, o.window_end, o.trip_id, o.created_at,"
    " o.updated_at, o.version,"
    " (SELECT count(*) FROM exceptions e WHERE e.order_id = o.id AND e.status <> 'resolved')"
    " AS open_exceptions,"
    " ARRAY(SELECT DISTINCT e.kind FROM exceptions e WHERE e.order_id = o.id"
    " AND e.status <> 'resolved' ORDER BY e.kind) AS exception_flags"
)


def _where(f: OrderFilter) -> tuple[list[sql.Composable], list[Any]]:
    where: list[sql.Composable] = []
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        where.append(sql.SQL(clause))  # type: ignore[arg-type]  # constant SQL text only
        params.extend(values)

    if f.q:
        like = f.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        add("(lower(o.number) LIKE %s OR lower(c.name) LIKE %s OR lower(c.ref) LIKE %s)",
            like, like, like)  # fmt: skip
    if f.state:
        add("o.state = ANY(%s)", [s.value for s in f.state])
    for column, value in (("o.type", f.type), ("c.ref", f.customer), ("o.trip_id", f.trip)):
        if value is not None:
            add(f"{column} = %s", value)
    if f.priority_at_least is not None:
        add("o.priority >= %s", f.priority_at_least)
    if f.created_since is not None:
        add("o.created_at >= %s", f.created_since)
    if f.created_until is not None:
        add("o.created_at <= %s", f.created_until)
    if f.due_before is not None:
        add("o.window_end < %s", f.due_before)
    if f.sku is not None:
        add("EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.sku = %s)", f.sku)
    if f.has_open_exceptions is not None:
        exists = (
            "EXISTS (SELECT 1 FROM exceptions e WHERE e.order_id = o.id AND e.status <> 'resolved')"
        )
        add(exists if f.has_open_exceptions else f"NOT {exists}")
    return where, params


async def list_orders(
    conn: AsyncConnection[Any], f: OrderFilter
) -> tuple[list[OrderSummary], str | None]:
    """A page of orders and the cursor of the next one (keyset on created_at, id)."""
    where, params = _where(f)
    newest = f.order == "newest"
    if f.cursor is not None:
        after_time, after_id = decode_cursor(f.cursor, "bigint")
        op = "<" if newest else ">"
        where.append(sql.SQL(f"(o.created_at, o.id) {op} (%s, %s)"))  # type: ignore[arg-type]
        params.extend([after_time, after_id])
    direction = sql.SQL("DESC" if newest else "ASC")
    query = sql.SQL(
        "SELECT {cols} FROM orders o JOIN customers c ON c.id = o.customer_id {where}"
        " ORDER BY o.created_at {d}, o.id {d} LIMIT %s"
    ).format(
        cols=_SUMMARY,
        where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
        d=direction,
    )
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, [*params, f.limit + 1])
    rows = await cur.fetchall()
    next_cursor = None
    if len(rows) > f.limit:
        rows = rows[: f.limit]
        next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
    return [OrderSummary.model_validate(r) for r in rows], next_cursor


async def get_order(conn: AsyncConnection[Any], number: str) -> OrderOut | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        sql.SQL(
            "SELECT {cols}, o.notes, o.dest_lat, o.dest_lon, o.dest_radius_m, o.created_by,"
            " o.customer_id FROM orders o JOIN customers c ON c.id = o.customer_id"
            " WHERE o.number = %s"
        ).format(cols=_SUMMARY),
        (number,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    await cur.execute(
        "SELECT ref, name, email, phone, notify_email, notify_sms FROM customers WHERE id = %s",
        (row["customer_id"],),
    )
    customer = await cur.fetchone()
    await cur.execute(
        "SELECT line_no, sku, quantity, unit_price FROM order_lines WHERE order_id = %s"
        " ORDER BY line_no",
        (row["id"],),
    )
    lines = await cur.fetchall()
    await cur.execute(
        "SELECT id, sscc, epc, state, loaded_trip, loaded_at FROM packages WHERE order_id = %s"
        " ORDER BY id",
        (row["id"],),
    )
    packages = await cur.fetchall()
    return OrderOut.model_validate(
        {**row, "customer": customer, "lines": lines, "packages": packages}
    )


class OrderEventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    from_state: str | None
    to_state: str | None
    trigger: str | None
    package_sscc: str | None
    evidence_event_id: Any | None
    read_point: dict[str, Any] | None
    actor: str
    detail: dict[str, Any]


async def order_history(conn: AsyncConnection[Any], order_id: int) -> list[OrderEventOut]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT e.id, e.at, e.kind, e.from_state, e.to_state, e.trigger,"
        " p.sscc AS package_sscc, e.evidence_event_id, e.read_point, e.actor, e.detail"
        " FROM order_events e LEFT JOIN packages p ON p.id = e.package_id"
        " WHERE e.order_id = %s ORDER BY e.id",
        (order_id,),
    )
    return [OrderEventOut.model_validate(r) for r in await cur.fetchall()]
