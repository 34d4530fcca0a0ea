"""Purchase orders: the buyer creates and cancels them, the supplier acknowledges, both read.

Each PO reads with its lines and, per line, what was ordered, shipped (on submitted and
received ASNs), proposed in drafts, and what remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from inbound.asn import AsnStatus
from inbound.purchase_orders import LineKind, PoStatus, Side, po_move
from ingest_service.dispatch.errors import Conflict, NotFound, Refused

from .access import SCOPE, Viewer, books_of


@dataclass(frozen=True, slots=True)
class NewLine:
    sku: str
    quantity: int
    kind: LineKind = LineKind.MATERIAL
    unit_price: Decimal | None = None
    delivery_date: date | None = None


_SELECT = (
    "SELECT d.id, d.number, s.ref AS supplier_ref, s.name AS supplier_name, d.site, d.status,"
    " d.delivery_date, d.comments, d.created_at, d.created_by, d.acknowledged_at,"
    " d.acknowledged_by FROM purchase_orders d JOIN suppliers s ON s.id = d.supplier_id"
)


def _missing(number: str) -> NotFound:
    return NotFound(f"no purchase order {number}: GET /api/v1/purchase-orders lists yours")


async def find_po(
    conn: AsyncConnection[Any], viewer: Viewer, number: str, *, lock: bool = False
) -> dict[str, Any]:
    """The PO as the viewer may see it (NotFound otherwise), locked for update if asked."""
    cur = conn.cursor(row_factory=dict_row)
    query = _SELECT + f" WHERE d.number = %(number)s AND {SCOPE}"
    await cur.execute(
        query + (" FOR UPDATE OF d" if lock else ""), {"number": number, **viewer.params}
    )
    row = await cur.fetchone()
    if row is None:
        raise _missing(number)
    return row


async def list_pos(
    conn: AsyncConnection[Any], viewer: Viewer, *, status: Sequence[PoStatus] | None = None
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    statuses = [s.value for s in status] if status else None
    await cur.execute(
        _SELECT
        + f" WHERE {SCOPE} AND (%(statuses)s::text[] IS NULL OR d.status = ANY(%(statuses)s))"
        " ORDER BY d.delivery_date, d.number",
        {"statuses": statuses, **viewer.params},
    )
    return await cur.fetchall()


async def get_po(conn: AsyncConnection[Any], viewer: Viewer, number: str) -> dict[str, Any]:
    """The PO with its lines (ordered, shipped, in drafts, remaining) and its ASNs."""
    po = await find_po(conn, viewer, number)
    books = await books_of(conn, po["id"])
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT line_no, unit_price FROM po_lines WHERE po_id = %s", (po["id"],))
    prices = {r["line_no"]: r["unit_price"] for r in await cur.fetchall()}
    await cur.execute(
        "SELECT number, status, estimated_delivery, created_at FROM asns WHERE po_id = %s"
        " ORDER BY id",
        (po["id"],),
    )
    asns = await cur.fetchall()
    lines = [
        {
            "line_no": no,
            "sku": b.line.sku,
            "kind": b.line.kind,
            "ordered": b.line.quantity,
            "unit_price": prices[no],
            "delivery_date": b.line.delivery_date,
            "shipped": b.shipped,
            "in_drafts": b.in_drafts,
            "remaining": b.remaining,
        }
        for no, b in sorted(books.items())
    ]
    return {**po, "lines": lines, "asns": asns}


async def create_po(
    conn: AsyncConnection[Any],
    *,
    number: str,
    supplier: str,
    site: str,
    delivery_date: date,
    comments: str | None,
    lines: Sequence[NewLine],
    actor: str,
) -> None:
    """Store a new PO, status sent, its lines numbered 1, 2, ... in the order given."""
    cur = await conn.execute("SELECT id FROM suppliers WHERE ref = %s", (supplier,))
    found = await cur.fetchone()
    if found is None:
        raise Refused(f"no supplier {supplier}: create it with POST /api/v1/suppliers first")
    skus = sorted({line.sku for line in lines})
    cur = await conn.execute("SELECT sku FROM products WHERE sku = ANY(%s)", (skus,))
    unknown = set(skus) - {r[0] for r in await cur.fetchall()}
    if unknown:
        raise Refused(f"purchase order {number}: unknown product {', '.join(sorted(unknown))}")
    cur = await conn.execute(
        "INSERT INTO purchase_orders (number, supplier_id, site, delivery_date, comments,"
        " created_by) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (number) DO NOTHING"
        " RETURNING id",
        (number, found[0], site, delivery_date, comments, actor),
    )
    row = await cur.fetchone()
    if row is None:
        raise Conflict(f"purchase order {number} already exists; choose another number")
    async with conn.cursor() as lc:
        await lc.executemany(
            "INSERT INTO po_lines (po_id, line_no, sku, kind, quantity, unit_price,"
            " delivery_date) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (row[0], no, ln.sku, ln.kind.value, ln.quantity, ln.unit_price, ln.delivery_date)
                for no, ln in enumerate(lines, start=1)
            ],
        )


async def acknowledge_po(
    conn: AsyncConnection[Any], viewer: Viewer, number: str, *, at: datetime
) -> None:
    """The supplier has seen the PO (admins may act for it): sent → acknowledged."""
    po = await find_po(conn, viewer, number, lock=True)
    if why := po_move(number, PoStatus(po["status"]), PoStatus.ACKNOWLEDGED, Side.SUPPLIER):
        raise Conflict(why)
    await conn.execute(
        "UPDATE purchase_orders SET status = 'acknowledged', acknowledged_at = %s,"
        " acknowledged_by = %s WHERE id = %s",
        (at, viewer.username, po["id"]),
    )


async def cancel_po(
    conn: AsyncConnection[Any], viewer: Viewer, number: str, *, reason: str | None, at: datetime
) -> None:
    """The buyer cancels the PO, and with it its draft and submitted ASNs.

    Refused once goods were received against it: close it instead.
    """
    po = await find_po(conn, viewer, number, lock=True)
    if why := po_move(number, PoStatus(po["status"]), PoStatus.CANCELLED, Side.BUYER):
        raise Conflict(why)
    cur = await conn.execute(
        "SELECT number FROM asns WHERE po_id = %s AND status = %s ORDER BY id",
        (po["id"], AsnStatus.RECEIVED.value),
    )
    received = [r[0] for r in await cur.fetchall()]
    if received:
        raise Conflict(
            f"purchase order {number} cannot be cancelled: ASN {', '.join(received)} was"
            " received against it"
        )
    await conn.execute(
        "UPDATE asns SET status = 'cancelled', cancelled_at = %s, cancel_reason = %s"
        " WHERE po_id = %s AND status IN ('draft', 'submitted')",
        (
            at,
            f"purchase order {number} was cancelled" + (f": {reason}" if reason else ""),
            po["id"],
        ),
    )
    await conn.execute("UPDATE purchase_orders SET status = 'cancelled' WHERE id = %s", (po["id"],))
