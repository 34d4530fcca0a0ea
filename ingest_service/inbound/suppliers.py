"""Suppliers: the buyer keeps the list, and links supplier-role users to their supplier."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from ingest_service.auth import Role
from ingest_service.dispatch.errors import Conflict, NotFound, Refused

_SELECT = (
    "SELECT s.ref, s.name, s.email, s.reminder_days, s.created_at,"
    " coalesce(array_agg(u.username ORDER BY u.username) FILTER (WHERE u.id IS NOT NULL),"
    " '{}') AS users FROM suppliers s LEFT JOIN users u ON u.supplier_id = s.id"
)
_EDITABLE = ("name", "email", "reminder_days")


async def list_suppliers(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_SELECT + " GROUP BY s.id ORDER BY s.ref")
    return await cur.fetchall()


async def get_supplier(conn: AsyncConnection[Any], ref: str) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_SELECT + " WHERE s.ref = %s GROUP BY s.id", (ref,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no supplier {ref}: GET /api/v1/suppliers lists them")
    return row


async def create_supplier(
    conn: AsyncConnection[Any], *, ref: str, name: str, email: str | None, reminder_days: int
) -> dict[str, Any]:
    cur = await conn.execute(
        "INSERT INTO suppliers (ref, name, email, reminder_days) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (ref) DO NOTHING RETURNING id",
        (ref, name, email, reminder_days),
    )
    if await cur.fetchone() is None:
        raise Conflict(
            f"supplier {ref} already exists: change it with PATCH /api/v1/suppliers/{ref}"
        )
    return await get_supplier(conn, ref)


async def update_supplier(
    conn: AsyncConnection[Any], ref: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Change the fields given (name, email, reminder_days)."""
    given = [name for name in _EDITABLE if name in changes]
    if given:
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in given)
        cur = await conn.execute(
            sql.SQL("UPDATE suppliers SET {} WHERE ref = %s RETURNING id").format(sets),
            [*(changes[n] for n in given), ref],
        )
        if await cur.fetchone() is None:
            raise NotFound(f"no supplier {ref}: create it with POST /api/v1/suppliers")
    return await get_supplier(conn, ref)


async def link_user(conn: AsyncConnection[Any], ref: str, username: str) -> dict[str, Any]:
    """Make `username`, a supplier-role user, one of supplier `ref`'s users."""
    supplier = await get_supplier(conn, ref)
    cur = await conn.execute("SELECT role FROM users WHERE username = %s", (username,))
    row = await cur.fetchone()
    if row is None:
        raise Refused(f"no user {username}: create it with POST /api/v1/users, role supplier")
    if row[0] != Role.SUPPLIER:
        raise Refused(
            f"user {username} is {row[0]}; only a supplier-role user can be linked to a supplier"
        )
    await conn.execute(
        "UPDATE users SET supplier_id = (SELECT id FROM suppliers WHERE ref = %s)"
        " WHERE username = %s",
        (supplier["ref"], username),
    )
    return await get_supplier(conn, ref)
