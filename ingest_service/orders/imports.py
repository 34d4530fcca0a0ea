"""CSV import into the database: all or nothing, or the good orders only.

Parsing (`orders.csv_import`) reports rows that do not validate; storing can refuse more (an
unknown product, a number that exists, an oversell). Both kinds come back as row errors with
the file line. In `all_or_nothing` mode any error stores nothing; in `good_only` each order
gets a savepoint, so one refused order costs only itself.
"""

from __future__ import annotations

from typing import Any, Literal

from psycopg import AsyncConnection
from pydantic import BaseModel

from orders.csv_import import parse_orders_csv
from orders.inventory import OversellPolicy

from .store import DEFAULT_FENCE_RADIUS_M, Numbering, OrderRefused, create_order


class RowProblem(BaseModel):
    line: int
    order_number: str | None
    reason: str


class ImportReport(BaseModel):
    mode: Literal["all_or_nothing", "good_only"]
    created: list[str]
    refused: list[RowProblem]
    stored: bool
    warnings: list[str]


class _Abort(Exception):
    pass


async def import_orders(
    conn: AsyncConnection[Any],
    text: str,
    *,
    mode: Literal["all_or_nothing", "good_only"],
    actor: str,
    numbering: Numbering,
    oversell: OversellPolicy,
    default_radius_m: float = DEFAULT_FENCE_RADIUS_M,
) -> ImportReport:
    parsed = parse_orders_csv(text)
    problems = [RowProblem(line=e.line, order_number=e.order_number, reason=e.reason)
                for e in parsed.errors]  # fmt: skip
    report = ImportReport(mode=mode, created=[], refused=problems, stored=False, warnings=[])
    if problems and mode == "all_or_nothing":
        return report
    try:
        async with conn.transaction():
            for order in parsed.orders:
                line = parsed.lines_of[order.number][0]
                try:
                    async with conn.transaction():  # a savepoint per order
                        created = await create_order(
                            conn,
                            order,
                            actor=actor,
                            numbering=numbering,
                            oversell=oversell,
                            default_radius_m=default_radius_m,
                        )
                except OrderRefused as err:
                    report.refused.append(
                        RowProblem(line=line, order_number=order.number, reason=str(err))
                    )
                    if mode == "all_or_nothing":
                        raise _Abort from None
                    continue
                report.created.append(created.number)
                report.warnings.extend(created.warnings)
    except _Abort:
        report.created = []
        report.warnings = []
        return report
    report.stored = bool(report.created)
    return report
