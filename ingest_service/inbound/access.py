"""Who sees which documents, and the per-line books of a PO that the quantity rule reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from inbound.asn import AsnStatus, LineBook, line_books
from inbound.purchase_orders import LineKind, PoLine, Side
from ingest_service.auth import Role, User


@dataclass(frozen=True, slots=True)
class Viewer:
    """The current user as inbound sees them: buyer staff see everything."""

    username: str
    side: Side
    supplier_id: int | None  # a supplier user's supplier; None: sees no documents

    @property
    def params(self) -> dict[str, Any]:
        """Query parameters for `SCOPE`."""
        return {"buyer": self.side is Side.BUYER, "viewer_supplier": self.supplier_id}


# `AND`-ed into a query on a table aliased `d` with a supplier_id column. A supplier user
# without a supplier compares with NULL, which matches nothing.
SCOPE = "(%(buyer)s OR d.supplier_id = %(viewer_supplier)s)"


async def viewer_of(conn: AsyncConnection[Any], user: User) -> Viewer:
    if user.role is not Role.SUPPLIER:
        return Viewer(user.username, Side.BUYER, None)
    cur = await conn.execute("SELECT supplier_id FROM users WHERE id = %s", (user.id,))
    row = await cur.fetchone()
    return Viewer(user.username, Side.SUPPLIER, row[0] if row else None)


async def po_lines(conn: AsyncConnection[Any], po_id: int) -> list[PoLine]:
    cur = await conn.execute(
        "SELECT line_no, sku, kind, quantity, delivery_date FROM po_lines WHERE po_id = %s"
        " ORDER BY line_no",
        (po_id,),
    )
    return [
        PoLine(no, sku, LineKind(kind), qty, day)
        for no, sku, kind, qty, day in await cur.fetchall()
    ]


async def books_of(
    conn: AsyncConnection[Any], po_id: int, *, leave_out: int | None = None
) -> dict[int, LineBook]:
    """Each PO line with what the PO's ASNs, other than `leave_out`, ship of it."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT a.id, a.status, l.po_line_no, l.quantity FROM asns a"
        " JOIN asn_lines l ON l.asn_id = a.id"
        " WHERE a.po_id = %s AND a.id IS DISTINCT FROM %s",
        (po_id, leave_out),
    )
    by_asn: dict[int, tuple[AsnStatus, dict[int, int]]] = {}
    for r in await cur.fetchall():
        _, lines = by_asn.setdefault(r["id"], (AsnStatus(r["status"]), {}))
        lines[r["po_line_no"]] = r["quantity"]
    return line_books(await po_lines(conn, po_id), by_asn.values())
