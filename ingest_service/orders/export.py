"""Orders out as import rows: one row per order line, the columns `parse_orders_csv` reads,
plus the order's state and creation time, so an export (less those two) re-imports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from orders.csv_import import orders_csv_header

from .read import MAX_PAGE, OrderFilter, list_orders

EXPORT_HEADER = (*orders_csv_header(), "state", "created_at")
Cell = str | int | float | bool | Decimal | None

# One row per line of the given orders, in the import's column order. `notify` holds the
# channels the customer row records (email, sms); a webhook choice is not stored per customer,
# and the import has no webhook_url column to carry it anyway.
_ROWS = """
SELECT o.id, o.number, o.type, c.ref, c.name, c.email, c.phone,
       concat_ws(';', CASE WHEN c.notify_email THEN 'email' END,
                      CASE WHEN c.notify_sms THEN 'sms' END),
       o.dest_address, o.dest_lat, o.dest_lon, o.dest_radius_m, o.window_start, o.window_end,
       o.priority, o.notes,
       (SELECT count(*) FROM packages p WHERE p.order_id = o.id),
       EXISTS (SELECT 1 FROM packages p WHERE p.order_id = o.id AND p.epc IS NOT NULL),
       o.trip_id, l.sku, l.quantity, l.unit_price, o.state, o.created_at
FROM orders o
JOIN customers c ON c.id = o.customer_id
JOIN order_lines l ON l.order_id = o.id
WHERE o.id = ANY(%s)
ORDER BY o.id, l.line_no
"""


def _cell(value: Any) -> Cell:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | Decimal):
        return value  # a Decimal price prints with its two places, and is a number in XLSX
    return str(value)


async def _rows_of(conn: AsyncConnection[Any], ids: Sequence[int]) -> list[list[Cell]]:
    cur = await conn.execute(_ROWS, (list(ids),))
    by_order: dict[int, list[list[Cell]]] = {}
    for order_id, *values in await cur.fetchall():
        by_order.setdefault(order_id, []).append([_cell(v) for v in values])
    return [row for order_id in ids for row in by_order.get(order_id, [])]


async def export_rows(
    conn: AsyncConnection[Any], filters: OrderFilter
) -> AsyncIterator[list[list[Cell]]]:
    """Every order matching `filters` (its cursor and limit aside), a page of rows at a time,
    in the list's order. Run it in a repeatable-read transaction for one consistent snapshot."""
    page_filter = filters.model_copy(update={"cursor": None, "limit": MAX_PAGE})
    while True:
        orders, cursor = await list_orders(conn, page_filter)
        if orders:
            yield await _rows_of(conn, [o.id for o in orders])
        if cursor is None:
            return
        page_filter = page_filter.model_copy(update={"cursor": cursor})
