"""Creating orders: customer, lines, stock check, packages with SSCCs, the first history row.

Each function runs inside the caller's transaction on an async connection; the caller
commits (one order from the API) or decides what a failure costs (CSV import: all or
nothing, or good orders only, through savepoints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ingest_service.dispatch.errors import Refused
from ingest_service.geo.fences import create_order_fence
from ingest_service.settings import Settings
from orders.codes import make_sscc, sscc_epc96
from orders.exceptions import ExceptionKind
from orders.inventory import OversellPolicy, Shortfall, shortfalls
from orders.models import CustomerIn, OrderIn

# Orders in these states still want their lines from stock (picking takes them off).
RESERVING_STATES = ("created", "picking")
# For callers without settings at hand (the CSV import); the API passes its own.
DEFAULT_FENCE_RADIUS_M: float = Settings.model_fields["default_fence_radius_m"].default


class OrderRefused(ValueError):
    """An order that cannot be stored as given; the message says what to change."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict  # 409 (it clashes with what is stored) rather than 422


@dataclass(frozen=True, slots=True)
class Numbering:
    """Where package SSCCs come from: the GS1 company prefix and the extension digit."""

    company_prefix: str
    extension: int = 0


@dataclass
class Created:
    id: int
    number: str
    ssccs: list[str]
    warnings: list[str] = field(default_factory=list)


async def upsert_customer(conn: AsyncConnection[Any], c: CustomerIn) -> int:
    """The customer's id; an existing customer (same ref) takes the newer details."""
    cur = await conn.execute(
        "INSERT INTO customers (ref, name, email, phone, notify_email, notify_sms, webhook_url)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (ref) DO UPDATE SET name = EXCLUDED.name,"
        " email = COALESCE(EXCLUDED.email, customers.email),"
        " phone = COALESCE(EXCLUDED.phone, customers.phone),"
        " notify_email = EXCLUDED.notify_email, notify_sms = EXCLUDED.notify_sms,"
        " webhook_url = COALESCE(EXCLUDED.webhook_url, customers.webhook_url)"
        " RETURNING id",
        (c.ref, c.name, c.email, c.phone, "email" in c.notify, "sms" in c.notify, c.webhook_url),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def check_stock(
    conn: AsyncConnection[Any], wanted: dict[str, int], *, exclude_order: int | None = None
) -> list[Shortfall]:
    """Lines stock cannot serve: on hand minus what open orders already want. Locks the
    products' rows first, so two orders for the last unit cannot both see it free."""
    skus = sorted(wanted)
    await conn.execute(
        "SELECT sku FROM products WHERE sku = ANY(%s) ORDER BY sku FOR UPDATE", (skus,)
    )
    cur = await conn.execute(
        "SELECT p.sku, COALESCE(s.on_hand, 0) - COALESCE(r.reserved, 0) FROM products p"
        " LEFT JOIN (SELECT sku, sum(quantity) AS on_hand FROM stock GROUP BY sku) s"
        "   USING (sku)"
        " LEFT JOIN (SELECT l.sku, sum(l.quantity) AS reserved FROM order_lines l"
        "   JOIN orders o ON o.id = l.order_id"
        "   WHERE o.state = ANY(%s) AND o.id IS DISTINCT FROM %s GROUP BY l.sku) r USING (sku)"
        " WHERE p.sku = ANY(%s)",
        (list(RESERVING_STATES), exclude_order, skus),
    )
    available = {sku: int(free) for sku, free in await cur.fetchall()}
    return shortfalls(wanted, available)


async def _prices(conn: AsyncConnection[Any], order: OrderIn) -> dict[str, Any]:
    skus = [line.sku for line in order.lines]
    cur = await conn.execute(
        "SELECT sku, unit_price FROM products WHERE sku = ANY(%s) AND active", (skus,)
    )
    prices = dict(await cur.fetchall())
    unknown = [s for s in skus if s not in prices]
    if unknown:
        raise OrderRefused(
            f"unknown or inactive product {', '.join(unknown)}: add it under /api/v1/products"
            " first, or fix the SKU"
        )
    return prices


async def allocate_ssccs(conn: AsyncConnection[Any], numbering: Numbering, count: int) -> list[str]:
    """`count` fresh SSCCs: the serial counter moves under its row lock, so two processes
    never hand out the same one."""
    cur = await conn.execute(
        "INSERT INTO sscc_serials (company_prefix, next_serial) VALUES (%s, %s)"
        " ON CONFLICT (company_prefix) DO UPDATE"
        " SET next_serial = sscc_serials.next_serial + EXCLUDED.next_serial"
        " RETURNING next_serial",
        (numbering.company_prefix, count),
    )
    row = await cur.fetchone()
    assert row is not None
    end = int(row[0])
    return [
        make_sscc(numbering.company_prefix, s, numbering.extension) for s in range(end - count, end)
    ]


async def create_order(
    conn: AsyncConnection[Any],
    order: OrderIn,
    *,
    actor: str,
    numbering: Numbering,
    oversell: OversellPolicy,
    default_radius_m: float = DEFAULT_FENCE_RADIUS_M,
) -> Created:
    """Store one validated order. Raises OrderRefused with a reason a user can act on.

    An order with lat/lon gets its destination fence: a customer_site circle of the
    destination's radius_m, or `default_radius_m` (Settings.default_fence_radius_m)."""
    prices = await _prices(conn, order)
    wanted: dict[str, int] = {}
    for line in order.lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    short = await check_stock(conn, wanted)
    if short and oversell is OversellPolicy.REFUSE:
        raise OrderRefused(
            f"order {order.number} would oversell: {'; '.join(map(str, short))}",
            conflict=True,
        )
    if order.trip is not None:
        cur = await conn.execute("SELECT state FROM trips WHERE id = %s", (order.trip,))
        trip = await cur.fetchone()
        if trip is None:
            raise OrderRefused(f"unknown trip {order.trip}: create it first, or leave trip empty")
    customer_id = await upsert_customer(conn, order.customer)
    d = order.destination
    cur = await conn.execute(
        "INSERT INTO orders (number, type, customer_id, priority, notes, dest_address, dest_lat,"
        " dest_lon, dest_radius_m, window_start, window_end, trip_id, created_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (number) DO NOTHING RETURNING id",
        (
            order.number, order.type, customer_id, order.priority, order.notes, d.address,
            d.lat, d.lon, d.radius_m, order.window_start, order.window_end, order.trip, actor,
        ),
    )  # fmt: skip
    row = await cur.fetchone()
    if row is None:
        raise OrderRefused(f"order {order.number} already exists", conflict=True)
    order_id = int(row[0])
    if d.lat is not None and d.lon is not None:
        try:
            await create_order_fence(
                conn,
                order_id=order_id,
                number=order.number,
                lon=d.lon,
                lat=d.lat,
                radius_m=d.radius_m or default_radius_m,
                actor=actor,
            )
        except Refused as err:
            raise OrderRefused(str(err)) from None
    async with conn.cursor() as c:
        await c.executemany(
            "INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_price)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (order_id, n, line.sku, line.quantity, line.unit_price or prices[line.sku])
                for n, line in enumerate(order.lines, start=1)
            ],
        )
        ssccs = await allocate_ssccs(conn, numbering, order.packages)
        prefix_len = len(numbering.company_prefix)
        await c.executemany(
            "INSERT INTO packages (order_id, sscc, epc) VALUES (%s, %s, %s)",
            [(order_id, s, sscc_epc96(s, prefix_len) if order.tagged else None) for s in ssccs],
        )
    detail = {"lines": len(order.lines), "packages": ssccs, "trip": order.trip}
    await conn.execute(
        "INSERT INTO order_events (order_id, kind, to_state, actor, detail)"
        " VALUES (%s, 'created', 'created', %s, %s)",
        (order_id, actor, Jsonb(detail)),
    )
    created = Created(order_id, order.number, ssccs)
    if short:
        summary = f"order {order.number} oversells: {'; '.join(map(str, short))}"
        created.warnings.append(summary)
        await conn.execute(
            "INSERT INTO exceptions (kind, summary, order_id, sku, opened_by, dedup_key)"
            " VALUES (%s, %s, %s, %s, 'rule:oversell', %s) ON CONFLICT (dedup_key) DO NOTHING",
            (ExceptionKind.OVERSELL, summary, order_id, short[0].sku, f"oversell:{order_id}"),
        )
    return created
