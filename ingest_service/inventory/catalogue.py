"""Products: create, change and list them; a GTIN is checked as a GTIN-14 before it is kept."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from psycopg import AsyncConnection, errors, sql
from psycopg.rows import dict_row
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from identifiers.gs1 import check_digit_error
from orders.models import Ref, ShortText

MAX_PAGE = 1000


class ProductRefused(ValueError):
    """A product change that cannot be stored; the message says what to change."""

    def __init__(self, message: str, *, conflict: bool = False, missing: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict  # 409: it clashes with what is stored
        self.missing = missing  # 404: no such product


def gtin14(value: str) -> str:
    """A GTIN-8, -12, -13 or -14 as its GTIN-14 (left zero-padding keeps the check digit)."""
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) in (8, 12, 13, 14)):
        raise ValueError(f"GTIN {value!r} must be 8, 12, 13 or 14 digits")
    padded = digits.zfill(14)
    reason = check_digit_error("GTIN", padded)
    if reason is not None:
        raise ValueError(f"{reason}; check the number on the product's barcode")
    return padded


Gtin = Annotated[str, AfterValidator(gtin14)]
Price = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
Threshold = Annotated[int, Field(ge=0, le=10_000_000)]
LeadTime = Annotated[float, Field(ge=0, le=365, allow_inf_nan=False)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class ProductIn(_Input):
    sku: Ref
    gtin: Gtin | None = None
    name: ShortText
    unit_price: Price = Decimal(0)
    low_stock_threshold: Threshold = 0
    lead_time_days: LeadTime = 2
    active: bool = True


class ProductPatch(_Input):
    """Fields left out stay as they are; `gtin: null` removes the GTIN."""

    gtin: Gtin | None = None
    name: ShortText | None = None
    unit_price: Price | None = None
    low_stock_threshold: Threshold | None = None
    lead_time_days: LeadTime | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ProductPatch:
        nulls = sorted(n for n in self.model_fields_set - {"gtin"} if getattr(self, n) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null: leave it out to keep it")
        return self


class ProductOut(BaseModel):
    sku: str
    gtin: str | None
    name: str
    unit_price: Decimal
    low_stock_threshold: int
    lead_time_days: float
    active: bool
    on_hand: int


_COLUMNS = (
    "p.sku, p.gtin, p.name, p.unit_price, p.low_stock_threshold, p.lead_time_days, p.active,"
    " COALESCE((SELECT sum(s.quantity) FROM stock s WHERE s.sku = p.sku), 0)::int AS on_hand"
)


async def _gtin_owner(conn: AsyncConnection[Any], gtin: str) -> str:
    cur = await conn.execute("SELECT sku FROM products WHERE gtin = %s", (gtin,))
    row = await cur.fetchone()
    return row[0] if row else "another product"


async def get_product(conn: AsyncConnection[Any], sku: str) -> ProductOut | None:
    cur = conn.cursor(row_factory=dict_row)
    query = f"SELECT {_COLUMNS} FROM products p WHERE p.sku = %s"  # noqa: S608 (constant)
    await cur.execute(query, (sku,))
    row = await cur.fetchone()
    return ProductOut.model_validate(row) if row else None


async def create_product(conn: AsyncConnection[Any], p: ProductIn) -> ProductOut:
    """Store a new product; ProductRefused (conflict) if the SKU or GTIN is taken."""
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "INSERT INTO products (sku, gtin, name, unit_price, low_stock_threshold,"
                " lead_time_days, active) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (sku) DO NOTHING RETURNING sku",
                (p.sku, p.gtin, p.name, p.unit_price, p.low_stock_threshold,
                 p.lead_time_days, p.active),
            )  # fmt: skip
            created = await cur.fetchone()
    except errors.UniqueViolation:
        owner = await _gtin_owner(conn, p.gtin or "")
        raise ProductRefused(
            f"GTIN {p.gtin} already belongs to {owner}: fix the GTIN, or change that product",
            conflict=True,
        ) from None
    if created is None:
        raise ProductRefused(
            f"product {p.sku} already exists: change it with PATCH /api/v1/products/{p.sku}",
            conflict=True,
        )
    out = await get_product(conn, p.sku)
    assert out is not None
    return out


async def update_product(conn: AsyncConnection[Any], sku: str, patch: ProductPatch) -> ProductOut:
    """Change the fields given; ProductRefused if the product is unknown or the GTIN taken."""
    given = sorted(patch.model_fields_set)
    if given:
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in given)
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    sql.SQL("UPDATE products SET {} WHERE sku = %s RETURNING sku").format(sets),
                    [*(getattr(patch, name) for name in given), sku],
                )
                found = await cur.fetchone()
        except errors.UniqueViolation:
            owner = await _gtin_owner(conn, patch.gtin or "")
            raise ProductRefused(
                f"GTIN {patch.gtin} already belongs to {owner}: fix the GTIN, or change that"
                " product first",
                conflict=True,
            ) from None
        if found is None:
            raise ProductRefused(f"no product {sku}: create it with POST", missing=True)
    out = await get_product(conn, sku)
    if out is None:
        raise ProductRefused(f"no product {sku}: create it with POST", missing=True)
    return out


class ProductFilter(BaseModel):
    """Query parameters for the product list. Unknown names are refused."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(None, max_length=100, description="SKU, GTIN or name prefix")
    active: bool | None = None
    after: str | None = Field(None, max_length=64, description="`next_after` of the last page")
    limit: int = Field(100, ge=1, le=MAX_PAGE)


async def list_products(
    conn: AsyncConnection[Any], f: ProductFilter
) -> tuple[list[ProductOut], str | None]:
    """A page of products in SKU order, and the SKU to continue after (None on the last)."""
    where, params = ["TRUE"], []
    if f.q:
        like = f.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(lower(p.sku) LIKE %s OR p.gtin LIKE %s OR lower(p.name) LIKE %s)")
        params += [like, like, like]
    if f.active is not None:
        where.append("p.active = %s")
        params.append(f.active)
    if f.after is not None:
        where.append("p.sku > %s")
        params.append(f.after)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT {_COLUMNS} FROM products p WHERE {' AND '.join(where)}"  # noqa: S608  # constant clauses only
        " ORDER BY p.sku LIMIT %s",
        [*params, f.limit + 1],
    )
    rows = await cur.fetchall()
    more = len(rows) > f.limit
    items = [ProductOut.model_validate(r) for r in rows[: f.limit]]
    return items, items[-1].sku if more else None
