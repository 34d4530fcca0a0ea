"""Stock per location and its movements: receipts add, adjustments add or take away.

Stock is never overwritten: every change is a `stock_movements` row (who, why, how much)
and the level moves by its delta in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orders.models import Ref

from .low_stock import open_low_stock_async

MAX_DELTA = 1_000_000


class StockRefused(ValueError):
    """A movement that cannot be booked; the message says what to do."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class MovementIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    reason: Literal["receipt", "adjustment"] = Field(
        description="receipt: goods came in (delta > 0); adjustment: a count or a correction"
    )
    location: Ref
    delta: int = Field(ge=-MAX_DELTA, le=MAX_DELTA, description="units added (+) or removed (-)")

    @model_validator(mode="after")
    def _sign(self) -> MovementIn:
        if self.delta == 0:
            raise ValueError("delta 0 changes nothing: send the units added or removed")
        if self.reason == "receipt" and self.delta < 0:
            raise ValueError("a receipt adds stock: use reason 'adjustment' to take units away")
        return self


class StockAt(BaseModel):
    location: str
    quantity: int


class StockOut(BaseModel):
    sku: str
    on_hand: int
    locations: list[StockAt]


class MovementOut(BaseModel):
    id: int
    at: datetime
    sku: str
    location: str
    delta: int
    reason: str
    order_id: int | None
    actor: str


class Booked(BaseModel):
    movement: MovementOut
    quantity_at_location: int
    on_hand: int
    low_stock_opened: bool = Field(description="this movement opened today's low-stock exception")


async def stock_of(conn: AsyncConnection[Any], sku: str) -> StockOut | None:
    cur = await conn.execute("SELECT 1 FROM products WHERE sku = %s", (sku,))
    if await cur.fetchone() is None:
        return None
    cur = await conn.execute(
        "SELECT location, quantity FROM stock WHERE sku = %s ORDER BY location", (sku,)
    )
    locations = [StockAt(location=loc, quantity=q) for loc, q in await cur.fetchall()]
    return StockOut(sku=sku, on_hand=sum(s.quantity for s in locations), locations=locations)


async def book_movement(
    conn: AsyncConnection[Any], sku: str, m: MovementIn, *, actor: str
) -> Booked:
    """Book one movement in the caller's transaction; may open a low-stock exception."""
    cur = await conn.execute("SELECT 1 FROM products WHERE sku = %s FOR UPDATE", (sku,))
    if await cur.fetchone() is None:
        raise StockRefused(f"no product {sku}: create it under /api/v1/products", missing=True)
    cur = await conn.execute(
        "INSERT INTO stock (sku, location, quantity) VALUES (%s, %s, %s)"
        " ON CONFLICT (sku, location) DO UPDATE SET quantity = stock.quantity + EXCLUDED.quantity"
        " RETURNING quantity",
        (sku, m.location, m.delta),
    )
    row = await cur.fetchone()
    assert row is not None
    quantity = int(row[0])
    if m.delta < 0 and quantity < 0:
        raise StockRefused(
            f"{sku} at {m.location}: taking {-m.delta} would leave {quantity}; only"
            f" {quantity - m.delta} are booked there. Count the shelf and adjust by what is"
            " really missing"
        )
    dc = conn.cursor(row_factory=dict_row)
    await dc.execute(
        "INSERT INTO stock_movements (sku, location, delta, reason, actor)"
        " VALUES (%s, %s, %s, %s, %s)"
        " RETURNING id, at, sku, location, delta, reason, order_id, actor",
        (sku, m.location, m.delta, m.reason, actor),
    )
    movement = MovementOut.model_validate(await dc.fetchone())
    opened = await open_low_stock_async(conn, [sku]) if m.delta < 0 else []
    cur = await conn.execute("SELECT COALESCE(sum(quantity), 0) FROM stock WHERE sku = %s", (sku,))
    total = await cur.fetchone()
    assert total is not None
    return Booked(
        movement=movement,
        quantity_at_location=quantity,
        on_hand=int(total[0]),
        low_stock_opened=bool(opened),
    )


async def movements_of(conn: AsyncConnection[Any], sku: str, *, limit: int) -> list[MovementOut]:
    """The product's latest movements, newest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, at, sku, location, delta, reason, order_id, actor FROM stock_movements"
        " WHERE sku = %s ORDER BY at DESC, id DESC LIMIT %s",
        (sku, limit),
    )
    return [MovementOut.model_validate(r) for r in await cur.fetchall()]
