"""What goes on a package's label, read from the database by the package's SSCC."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from .render import Label

# A package's position is its place among its order's packages in id order: the order in
# which they were created and listed (`GET /orders/{number}`), so "2 of 3" matches there.
_LABEL = (
    "SELECT p.sscc, o.number, c.name, o.dest_address,"
    " (SELECT count(*) FROM packages q WHERE q.order_id = p.order_id AND q.id <= p.id),"
    " (SELECT count(*) FROM packages q WHERE q.order_id = p.order_id)"
    " FROM packages p JOIN orders o ON o.id = p.order_id"
    " JOIN customers c ON c.id = o.customer_id WHERE p.sscc = %s"
)


async def package_label(conn: AsyncConnection[Any], sscc: str) -> Label | None:
    """The label of the package with this SSCC, or None if there is no such package."""
    cur = await conn.execute(_LABEL, (sscc,))
    row = await cur.fetchone()
    if row is None:
        return None
    code, number, customer, address, position, count = row
    return Label(
        sscc=code,
        order_number=number,
        customer=customer,
        destination=address,
        package_no=position,
        packages=count,
    )
