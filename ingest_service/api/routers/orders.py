"""Orders: create one or import many, find them, change and cancel them, read their history."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from ingest_service.auth import CurrentUser, PoolDep, Role, SettingsDep, requires
from ingest_service.orders.change import cancel_order, update_order
from ingest_service.orders.imports import ImportReport, import_orders
from ingest_service.orders.read import (
    OrderEventOut,
    OrderFilter,
    OrderOut,
    OrderSummary,
    get_order,
    list_orders,
    order_history,
)
from ingest_service.orders.store import Numbering, OrderRefused, create_order
from ingest_service.settings import Settings
from orders.inventory import OversellPolicy
from orders.models import OrderIn, OrderPatch

router = APIRouter(prefix="/orders", tags=["orders"])
READERS = requires(Role.DISPATCHER, Role.DOCK, Role.VIEWER)
MANAGERS = requires(Role.DISPATCHER)
MAX_IMPORT_BYTES = 20 * 1024 * 1024


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


class CreatedOrder(BaseModel):
    number: str
    packages: list[str] = Field(description="the SSCC of each package, in label order")
    warnings: list[str]


class Cancel(BaseModel):
    version: int = Field(ge=1, description="the version you read; refused if it changed")
    reason: str = Field(min_length=1, max_length=500)


class Version(BaseModel):
    number: str
    version: int


def numbering(settings: Settings) -> Numbering:
    return Numbering(settings.gs1_company_prefix, settings.sscc_extension_digit)


def _refused(err: OrderRefused) -> HTTPException:
    code = status.HTTP_409_CONFLICT if err.conflict else 422
    return HTTPException(code, str(err))


@router.get("", dependencies=[Depends(READERS)])
async def find_orders(pool: PoolDep, filters: Annotated[OrderFilter, Query()]) -> OrderPage:
    """Orders matching every filter given, newest first; `q` searches number and customer."""
    async with pool.connection() as conn:
        items, cursor = await list_orders(conn, filters)
    return OrderPage(items=items, next_cursor=cursor)


@router.post("", status_code=201, dependencies=[Depends(MANAGERS)])
async def new_order(
    order: OrderIn, pool: PoolDep, user: CurrentUser, settings: SettingsDep
) -> CreatedOrder:
    """Create one order with its packages (SSCCs allocated from the company prefix)."""
    policy = OversellPolicy(settings.oversell_policy)
    async with pool.connection() as conn, conn.transaction():
        try:
            created = await create_order(
                conn,
                order,
                actor=user.username,
                numbering=numbering(settings),
                oversell=policy,
                default_radius_m=settings.default_fence_radius_m,
            )
        except OrderRefused as err:
            raise _refused(err) from None
    return CreatedOrder(number=created.number, packages=created.ssccs, warnings=created.warnings)


@router.post("/import", dependencies=[Depends(MANAGERS)])
async def import_csv(
    request: Request,
    pool: PoolDep,
    user: CurrentUser,
    settings: SettingsDep,
    mode: Annotated[
        Literal["all_or_nothing", "good_only"],
        Query(description="all_or_nothing: any bad row stores nothing; good_only: the rest"),
    ] = "all_or_nothing",
) -> ImportReport:
    """Import orders from CSV (body `text/csv`, one row per order line; the columns are in
    docs/orders.md). Every bad row is reported with its line and reason."""
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"the file is over {MAX_IMPORT_BYTES // 2**20} MiB: split it")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HTTPException(
            422, f"the file is not UTF-8 (byte {err.start}): save it as CSV UTF-8"
        ) from None
    async with pool.connection() as conn:
        return await import_orders(
            conn,
            text,
            mode=mode,
            actor=user.username,
            numbering=numbering(settings),
            oversell=OversellPolicy(settings.oversell_policy),
            default_radius_m=settings.default_fence_radius_m,
        )


@router.get("/{number}", dependencies=[Depends(READERS)])
async def one_order(number: str, pool: PoolDep) -> OrderOut:
    async with pool.connection() as conn:
        order = await get_order(conn, number)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {number}")
    return order


@router.patch("/{number}", dependencies=[Depends(MANAGERS)])
async def change_order(
    number: str, patch: OrderPatch, pool: PoolDep, user: CurrentUser, settings: SettingsDep
) -> Version:
    """Change an order; send the `version` you read. Every change is kept in its history."""
    async with pool.connection() as conn, conn.transaction():
        try:
            version = await update_order(
                conn,
                number,
                patch,
                actor=user.username,
                oversell=OversellPolicy(settings.oversell_policy),
            )
        except LookupError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
        except OrderRefused as err:
            raise _refused(err) from None
    return Version(number=number, version=version)


@router.post("/{number}/cancel", dependencies=[Depends(MANAGERS)])
async def cancel(number: str, body: Cancel, pool: PoolDep, user: CurrentUser) -> Version:
    """Cancel an order that has not left; a package of it scanned at a door is then refused."""
    async with pool.connection() as conn, conn.transaction():
        try:
            version = await cancel_order(
                conn, number, version=body.version, reason=body.reason, actor=user.username
            )
        except LookupError as err:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(err)) from None
        except OrderRefused as err:
            raise _refused(err) from None
    return Version(number=number, version=version)


@router.get("/{number}/history", dependencies=[Depends(READERS)])
async def history(number: str, pool: PoolDep) -> list[OrderEventOut]:
    """Every change to the order, oldest first, with its evidence and actor."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id FROM orders WHERE number = %s", (number,))
        row = await cur.fetchone()
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {number}")
        return await order_history(conn, row[0])
