"""Orders from a CSV file: one row per order line, rows of one order grouped by its number.

Pure: takes the file's text, returns the orders that validate and, for every bad row, its line
number and reason, so the user can fix the file or import only the good orders. Order-level
columns (customer, destination, window...) are read from an order's first row; a later row of
the same order that contradicts them is an error, not silently ignored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .models import OrderIn

REQUIRED = ("order_number", "customer_ref", "customer_name", "sku", "quantity", "address")
ORDER_COLUMNS = (
    "type", "customer_ref", "customer_name", "customer_email", "customer_phone", "notify",
    "address", "lat", "lon", "radius_m", "window_start", "window_end", "priority", "notes",
    "packages", "tagged", "trip",
)  # fmt: skip
LINE_COLUMNS = ("sku", "quantity", "unit_price")
KNOWN = frozenset(("order_number", *ORDER_COLUMNS, *LINE_COLUMNS))
MAX_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class RowError:
    line: int  # the line in the file (the header is line 1)
    order_number: str | None
    reason: str


@dataclass
class ImportResult:
    orders: list[OrderIn] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    lines_of: dict[str, list[int]] = field(default_factory=dict)  # order number -> its lines


def _blank(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def _explain(err: ValidationError, lines: list[int]) -> dict[int, list[str]]:
    """Each problem at the file line it comes from: a line's own field at that line, an
    order-level field at the order's first line."""
    by_line: dict[int, list[str]] = {}
    for e in err.errors(include_url=False):
        loc = e["loc"]
        line = lines[0]
        if len(loc) >= 2 and loc[0] == "lines" and isinstance(loc[1], int) and loc[1] < len(lines):
            line, loc = lines[loc[1]], loc[2:]
        where = ".".join(str(p) for p in loc)
        msg = e["msg"].removeprefix("Value error, ")
        by_line.setdefault(line, []).append(f"{where}: {msg}" if where else msg)
    return by_line


def _order_data(number: str, row: dict[str, str | None]) -> dict[str, Any]:
    notify = row.get("notify")
    data: dict[str, Any] = {
        "number": number,
        "customer": {
            "ref": row.get("customer_ref"),
            "name": row.get("customer_name"),
            "email": row.get("customer_email"),
            "phone": row.get("customer_phone"),
            **({"notify": [c.strip() for c in notify.split(";") if c.strip()]} if notify else {}),
        },
        "destination": {
            "address": row.get("address"),
            "lat": row.get("lat"),
            "lon": row.get("lon"),
            "radius_m": row.get("radius_m"),
        },
        "lines": [],
    }
    for key in ("type", "window_start", "window_end", "priority", "notes", "packages", "trip"):
        if row.get(key) is not None:
            data[key] = row[key]
    if row.get("tagged") is not None:
        data["tagged"] = str(row["tagged"]).lower() in ("1", "true", "yes", "y")
    return data


def parse_orders_csv(text: str) -> ImportResult:
    result = ImportResult()
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        return _parse(reader, result)
    except csv.Error as err:
        result.errors.append(RowError(reader.line_num, None, f"not valid CSV: {err}"))
        return result


def _parse(reader: csv.DictReader[str], result: ImportResult) -> ImportResult:
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in KNOWN]
    if missing or unknown:
        reason = "; ".join(
            [f"missing column {c!r}" for c in missing] + [f"unknown column {c!r}" for c in unknown]
        )
        result.errors.append(RowError(1, None, f"header: {reason}"))
        return result
    reader.fieldnames = header
    firsts: dict[str, dict[str, Any]] = {}
    first_row: dict[str, dict[str, str | None]] = {}
    bad_orders: set[str] = set()
    for index, raw in enumerate(reader):
        line = reader.line_num
        if index >= MAX_ROWS:
            result.errors.append(RowError(line, None, f"more than {MAX_ROWS} rows: split the file"))
            break
        if None in raw:
            result.errors.append(RowError(line, None, "more fields than the header has columns"))
            continue
        row = {k: _blank(v) for k, v in raw.items()}
        number = row.get("order_number")
        if number is None:
            result.errors.append(RowError(line, None, "order_number is empty"))
            continue
        result.lines_of.setdefault(number, []).append(line)
        if number not in firsts:
            firsts[number] = _order_data(number, row)
            first_row[number] = row
        else:
            clash = [c for c in ORDER_COLUMNS if row.get(c) and row[c] != first_row[number].get(c)]
            if clash:
                result.errors.append(
                    RowError(line, number, f"{', '.join(clash)} differ from the order's first row")
                )
                bad_orders.add(number)
                continue
        firsts[number]["lines"].append({k: row.get(k) for k in LINE_COLUMNS if row.get(k)})
    for number, data in firsts.items():
        if number in bad_orders:
            continue
        try:
            result.orders.append(OrderIn.model_validate(data))
        except ValidationError as err:
            for line, reasons in sorted(_explain(err, result.lines_of[number]).items()):
                result.errors.append(RowError(line, number, "; ".join(reasons)))
    return result


def orders_csv_header() -> list[str]:
    return ["order_number", *ORDER_COLUMNS, *LINE_COLUMNS]


def rows_of(orders: Iterable[OrderIn]) -> Iterable[list[str]]:
    """Orders back to import rows (a template, and a round-trip test)."""
    for o in orders:
        c, d = o.customer, o.destination
        head = [
            o.number, o.type, c.ref, c.name, c.email or "", c.phone or "",
            ";".join(sorted(c.notify)), d.address, _s(d.lat), _s(d.lon), _s(d.radius_m),
            o.window_start.isoformat() if o.window_start else "",
            o.window_end.isoformat() if o.window_end else "",
            str(o.priority), o.notes or "", str(o.packages), "true" if o.tagged else "false",
            o.trip or "",
        ]  # fmt: skip
        for line in o.lines:
            yield [*head, line.sku, str(line.quantity), _s(line.unit_price)]


def _s(value: object) -> str:
    return "" if value is None else str(value)
