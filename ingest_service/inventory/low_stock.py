"""The low-stock rule: a product at or below its threshold opens one exception a day.

`open_low_stock` (sync, for the scan matcher's transaction) and `open_low_stock_async` (for
the API) run the same two statements; the decision is the pure core's `replenishment_hint`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection

from orders.exceptions import ExceptionKind
from orders.inventory import ReplenishmentHint, replenishment_hint

USAGE_DAYS = 7  # the window of pick movements the daily usage is averaged over
RULE = f"rule:{ExceptionKind.LOW_STOCK}"

# One row per active product (all of them, or those in %(skus)s) at or below its threshold:
# on hand over every location, and what picks took in the last USAGE_DAYS days.
LEVELS = """
SELECT sku, name, on_hand, low_stock_threshold, lead_time_days, used,
       to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day
FROM (
    SELECT p.sku, p.name, p.low_stock_threshold, p.lead_time_days,
           COALESCE((SELECT sum(s.quantity) FROM stock s WHERE s.sku = p.sku), 0) AS on_hand,
           COALESCE((SELECT -sum(m.delta) FROM stock_movements m
                     WHERE m.sku = p.sku AND m.reason = 'pick'
                       AND m.at >= now() - make_interval(days => %(days)s)), 0) AS used
    FROM products p
    WHERE p.active AND (%(skus)s::text[] IS NULL OR p.sku = ANY(%(skus)s::text[]))
) levels
WHERE on_hand <= low_stock_threshold
ORDER BY sku
"""

OPEN = """
INSERT INTO exceptions (kind, summary, sku, opened_by, dedup_key)
SELECT %s, summary, sku, %s, dedup_key
FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(summary, sku, dedup_key)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING sku
"""


@dataclass(frozen=True, slots=True)
class LowStock:
    name: str
    hint: ReplenishmentHint
    day: str  # the UTC date the rule counts "once a day" by


def low_stock_rows(rows: Iterable[tuple[Any, ...]]) -> list[LowStock]:
    """The LEVELS rows as hints (the pure core decides; SQL only narrows the rows)."""
    found = []
    for sku, name, on_hand, threshold, lead_time, used, day in rows:
        hint = replenishment_hint(
            sku, int(on_hand), int(threshold), max(int(used), 0), USAGE_DAYS, float(lead_time)
        )
        if hint is not None:
            found.append(LowStock(name, hint, day))
    return found


def dedup_key(sku: str, day: str) -> str:
    return f"{ExceptionKind.LOW_STOCK}:{sku}:{day}"


def _open_params(found: list[LowStock]) -> tuple[Any, ...]:
    return (
        ExceptionKind.LOW_STOCK,
        RULE,
        [f"low stock: {f.hint}" for f in found],
        [f.hint.sku for f in found],
        [dedup_key(f.hint.sku, f.day) for f in found],
    )


def _levels_params(skus: Iterable[str] | None) -> dict[str, Any]:
    return {"days": USAGE_DAYS, "skus": None if skus is None else sorted(set(skus))}


def open_low_stock(conn: psycopg.Connection[Any], skus: Iterable[str]) -> list[str]:
    """Open a `low_stock` exception for each of `skus` now at or below its threshold, at most
    one per product per UTC day; returns the SKUs newly opened. Call it in the transaction
    that wrote the movements (the scan matcher: with the SKUs its picks took stock from)."""
    params = _levels_params(skus)
    if not params["skus"]:
        return []
    found = low_stock_rows(conn.execute(LEVELS, params).fetchall())
    if not found:
        return []
    return [row[0] for row in conn.execute(OPEN, _open_params(found)).fetchall()]


async def open_low_stock_async(conn: AsyncConnection[Any], skus: Iterable[str]) -> list[str]:
    """`open_low_stock` on an async connection (the API's movements)."""
    params = _levels_params(skus)
    if not params["skus"]:
        return []
    cur = await conn.execute(LEVELS, params)
    found = low_stock_rows(await cur.fetchall())
    if not found:
        return []
    cur = await conn.execute(OPEN, _open_params(found))
    return [row[0] for row in await cur.fetchall()]


async def low_stock_list(conn: AsyncConnection[Any]) -> list[LowStock]:
    """Every active product at or below its threshold, with how much to reorder."""
    cur = await conn.execute(LEVELS, _levels_params(None))
    return low_stock_rows(await cur.fetchall())
