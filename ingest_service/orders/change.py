"""Changing and cancelling orders, every change recorded: who, when, what it was before.

Edits carry the version the editor saw; if someone else changed the order meanwhile the edit
is refused (409) rather than silently overwriting theirs. What may change depends on how far
the order has gone: lines only before picking starts, the trip only before loading, the
destination only before delivery. Cancelling follows the lifecycle table.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from orders.inventory import OversellPolicy
from orders.lifecycle import ORDER_RANK, Ignored, OrderState, Trigger, order_move
from orders.models import OrderPatch

from .store import OrderRefused, check_stock

_SIMPLE = {"type": "type", "priority": "priority", "notes": "notes", "trip": "trip_id"}
_WINDOW = {"window_start": "window_start", "window_end": "window_end"}
_DEST = {
    "address": "dest_address",
    "lat": "dest_lat",
    "lon": "dest_lon",
    "radius_m": "dest_radius_m",
}


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def _locked(conn: AsyncConnection[Any], number: str) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT * FROM orders WHERE number = %s FOR UPDATE", (number,))
    row = await cur.fetchone()
    if row is None:
        raise LookupError(f"no order {number}")
    return row


def _check_version(row: dict[str, Any], version: int) -> None:
    if row["version"] != version:
        raise OrderRefused(
            f"order {row['number']} changed since you read it (version {row['version']}, you"
            f" sent {version}): reload it and apply your change again",
            conflict=True,
        )


async def update_order(
    conn: AsyncConnection[Any],
    number: str,
    patch: OrderPatch,
    *,
    actor: str,
    oversell: OversellPolicy,
) -> int:
    """Apply `patch`; returns the new version. Raises LookupError or OrderRefused."""
    row = await _locked(conn, number)
    _check_version(row, patch.version)
    state = OrderState(row["state"])
    if state in (OrderState.CANCELLED, OrderState.DELIVERED):
        raise OrderRefused(f"order {number} is {state}: it can no longer change", conflict=True)
    given = patch.model_fields_set - {"version"}
    sets: dict[str, Any] = {}
    for field, column in _SIMPLE.items():
        if field in given:
            sets[column] = getattr(patch, field)
    for field, column in _WINDOW.items():
        if field in given:
            sets[column] = getattr(patch, field)
    if patch.destination is not None:
        for field, column in _DEST.items():
            sets[column] = getattr(patch.destination, field)
    if "trip_id" in sets and ORDER_RANK[state] >= ORDER_RANK[OrderState.LOADED]:
        raise OrderRefused(f"order {number} is {state}: unload it before changing its trip")
    if sets.get("trip_id") is not None:
        cur = await conn.execute("SELECT 1 FROM trips WHERE id = %s", (sets["trip_id"],))
        if await cur.fetchone() is None:
            raise OrderRefused(f"unknown trip {sets['trip_id']}")
    start, end = (
        sets.get("window_start", row["window_start"]),
        sets.get("window_end", row["window_end"]),
    )
    if start and end and end < start:
        raise OrderRefused("window_end is before window_start")
    changes = {c: {"from": _json(row[c]), "to": _json(v)} for c, v in sets.items() if row[c] != v}
    if patch.lines is not None:
        if state is not OrderState.CREATED:
            raise OrderRefused(f"order {number} is {state}: lines change only before picking")
        changes["lines"] = await _replace_lines(conn, row["id"], patch, oversell=oversell)
    if not changes:
        return int(row["version"])
    assignments = ", ".join(f"{c} = %s" for c in sets)
    await conn.execute(
        f"UPDATE orders SET {assignments}{', ' if sets else ''}"  # noqa: S608 (columns are ours)
        "updated_at = now(), version = version + 1 WHERE id = %s",
        (*sets.values(), row["id"]),
    )
    await conn.execute(
        "INSERT INTO order_events (order_id, kind, actor, detail) VALUES (%s, 'changed', %s, %s)",
        (row["id"], actor, Jsonb(changes)),
    )
    return int(row["version"]) + 1


async def _replace_lines(
    conn: AsyncConnection[Any], order_id: int, patch: OrderPatch, *, oversell: OversellPolicy
) -> dict[str, Any]:
    assert patch.lines is not None
    cur = await conn.execute(
        "SELECT sku, quantity FROM order_lines WHERE order_id = %s ORDER BY line_no", (order_id,)
    )
    before = [[sku, qty] for sku, qty in await cur.fetchall()]
    wanted = {line.sku: line.quantity for line in patch.lines}
    short = await check_stock(conn, wanted, exclude_order=order_id)
    if short and oversell is OversellPolicy.REFUSE:
        raise OrderRefused(
            f"the new lines would oversell: {'; '.join(map(str, short))}", conflict=True
        )
    cur = await conn.execute(
        "SELECT sku, unit_price FROM products WHERE sku = ANY(%s) AND active", (list(wanted),)
    )
    prices = dict(await cur.fetchall())
    unknown = sorted(set(wanted) - set(prices))
    if unknown:
        raise OrderRefused(f"unknown or inactive product {', '.join(unknown)}")
    await conn.execute("DELETE FROM order_lines WHERE order_id = %s", (order_id,))
    async with conn.cursor() as c:
        await c.executemany(
            "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (order_id, n, line.sku, line.quantity, line.unit_price or prices[line.sku])
                for n, line in enumerate(patch.lines, start=1)
            ],
        )
    return {"from": before, "to": [[line.sku, line.quantity] for line in patch.lines]}


async def cancel_order(
    conn: AsyncConnection[Any], number: str, *, version: int, reason: str, actor: str
) -> int:
    """Cancel by the lifecycle table; returns the new version."""
    row = await _locked(conn, number)
    _check_version(row, version)
    outcome = order_move(OrderState(row["state"]), Trigger.CANCELLED, OrderState.CANCELLED)
    if isinstance(outcome, Ignored):
        raise OrderRefused(f"order {number}: {outcome.reason}", conflict=True)
    await conn.execute(
        "UPDATE orders SET state = 'cancelled', updated_at = now(), version = version + 1"
        " WHERE id = %s",
        (row["id"],),
    )
    await conn.execute(
        "INSERT INTO order_events (order_id, kind, from_state, to_state, trigger, actor, detail)"
        " VALUES (%s, 'state', %s, 'cancelled', 'cancelled', %s, %s)",
        (row["id"], row["state"], actor, Jsonb({"reason": reason})),
    )
    return int(row["version"]) + 1
