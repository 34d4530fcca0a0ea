"""Products and their stock: the catalogue, stock per location, receipts and adjustments,
and the products to reorder. Dispatchers manage; dock workers and viewers read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from ingest_service.auth import CurrentUser, PoolDep, Role, requires
from ingest_service.inventory.catalogue import (
    ProductFilter,
    ProductIn,
    ProductOut,
    ProductPatch,
    ProductRefused,
    create_product,
    list_products,
    update_product,
)
from ingest_service.inventory.low_stock import USAGE_DAYS, low_stock_list
from ingest_service.inventory.stock import (
    Booked,
    MovementIn,
    MovementOut,
    StockOut,
    StockRefused,
    book_movement,
    movements_of,
    stock_of,
)

router = APIRouter(prefix="/products", tags=["products"])
READERS = requires(Role.DISPATCHER, Role.DOCK, Role.VIEWER)
MANAGERS = requires(Role.DISPATCHER)


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_after: str | None = Field(description="pass as `after` for the next page")


class Reorder(BaseModel):
    sku: str
    name: str
    on_hand: int
    threshold: int
    daily_usage: float = Field(description=f"units picked per day over the last {USAGE_DAYS}")
    lead_time_days: float
    reorder_qty: int
    hint: str


def _refused(err: ProductRefused) -> HTTPException:
    if err.missing:
        return HTTPException(status.HTTP_404_NOT_FOUND, str(err))
    return HTTPException(status.HTTP_409_CONFLICT if err.conflict else 422, str(err))


@router.get("", dependencies=[Depends(READERS)])
async def find_products(pool: PoolDep, filters: Annotated[ProductFilter, Query()]) -> ProductPage:
    """Products in SKU order with their stock on hand; `q` searches SKU, GTIN and name."""
    async with pool.connection() as conn:
        items, after = await list_products(conn, filters)
    return ProductPage(items=items, next_after=after)


@router.post("", status_code=201, dependencies=[Depends(MANAGERS)])
async def new_product(product: ProductIn, pool: PoolDep) -> ProductOut:
    """Add a product; its GTIN (8 to 14 digits) is kept as a checked GTIN-14."""
    async with pool.connection() as conn:
        try:
            return await create_product(conn, product)
        except ProductRefused as err:
            raise _refused(err) from None


@router.get("/low-stock", dependencies=[Depends(READERS)])
async def low_stock(pool: PoolDep) -> list[Reorder]:
    """Active products at or below their threshold, with how much to reorder."""
    async with pool.connection() as conn:
        found = await low_stock_list(conn)
    return [
        Reorder(
            sku=f.hint.sku,
            name=f.name,
            on_hand=f.hint.on_hand,
            threshold=f.hint.threshold,
            daily_usage=round(f.hint.daily_usage, 3),
            lead_time_days=f.hint.lead_time_days,
            reorder_qty=f.hint.reorder_qty,
            hint=str(f.hint),
        )
        for f in found
    ]


@router.patch("/{sku}", dependencies=[Depends(MANAGERS)])
async def change_product(sku: str, patch: ProductPatch, pool: PoolDep) -> ProductOut:
    """Change a product's fields; set `active: false` to stop new orders for it."""
    async with pool.connection() as conn:
        try:
            return await update_product(conn, sku, patch)
        except ProductRefused as err:
            raise _refused(err) from None


@router.get("/{sku}/stock", dependencies=[Depends(READERS)])
async def stock(sku: str, pool: PoolDep) -> StockOut:
    """Stock of one product per location, and in all."""
    async with pool.connection() as conn:
        found = await stock_of(conn, sku)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no product {sku}: check the SKU")
    return found


@router.post("/{sku}/movements", status_code=201, dependencies=[Depends(MANAGERS)])
async def move_stock(sku: str, movement: MovementIn, pool: PoolDep, user: CurrentUser) -> Booked:
    """Book a receipt (+) or an adjustment (+/-) at a location; it is kept with who booked
    it. Taking a product to or below its threshold opens a low-stock exception (once a day)."""
    async with pool.connection() as conn, conn.transaction():
        try:
            return await book_movement(conn, sku, movement, actor=user.username)
        except StockRefused as err:
            code = status.HTTP_404_NOT_FOUND if err.missing else status.HTTP_409_CONFLICT
            raise HTTPException(code, str(err)) from None


@router.get("/{sku}/movements", dependencies=[Depends(READERS)])
async def movements(
    sku: str, pool: PoolDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[MovementOut]:
    """The product's latest stock movements, newest first: picks, receipts, adjustments."""
    async with pool.connection() as conn:
        if await stock_of(conn, sku) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no product {sku}: check the SKU")
        return await movements_of(conn, sku, limit=limit)
