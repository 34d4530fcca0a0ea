"""Order exports: every order matching the list's filters, one row per line, as CSV or XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response, StreamingResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ingest_service.auth import PoolDep, Role, requires
from ingest_service.orders.export import EXPORT_HEADER, Cell, export_rows
from ingest_service.orders.read import OrderFilter

router = APIRouter(prefix="/orders", tags=["orders"])
EXPORTERS = requires(Role.DISPATCHER, Role.VIEWER)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# All pages of one export come from one snapshot: an order changed meanwhile is not
# exported twice or half-old, half-new.
SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class ExportQuery(OrderFilter):
    """The list's filters and the file format (one query model: unknown names are refused)."""

    format: Literal["csv", "xlsx"] = Field("csv", description="csv (UTF-8) or xlsx")


@router.get("/export", dependencies=[Depends(EXPORTERS)])
async def export_orders(pool: PoolDep, filters: Annotated[ExportQuery, Query()]) -> Response:
    """Every order matching the filters of `GET /orders`, one row per order line: the import
    columns (docs/orders.md), then `state` and `created_at`. Drop those two to re-import."""
    if paging := sorted(filters.model_fields_set & {"cursor", "limit"}):
        raise HTTPException(
            422, f"the export holds every matching order: leave out {' and '.join(paging)}"
        )
    format = filters.format
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {"Content-Disposition": f'attachment; filename="orders-{stamp}.{format}"'}
    if format == "xlsx":
        return Response(await _xlsx(pool, filters), media_type=XLSX, headers=headers)
    chunks = _csv(pool, filters)
    # Open the snapshot before answering: a database that is down is a 503, not a cut file.
    first = await anext(chunks)
    return StreamingResponse(
        _then(first, chunks), media_type="text/csv; charset=utf-8", headers=headers
    )


async def _snapshot(conn: AsyncConnection[Any]) -> None:
    await conn.execute(SNAPSHOT)


def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv_lines(rows: list[list[Cell]] | list[tuple[str, ...]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([_csv_text(v) for v in r] for r in rows)
    return out.getvalue().encode("utf-8")


async def _csv(pool: AsyncConnectionPool, filters: OrderFilter) -> AsyncIterator[bytes]:
    async with pool.connection() as conn, conn.transaction():
        await _snapshot(conn)
        yield _csv_lines([EXPORT_HEADER])
        async for rows in export_rows(conn, filters):
            yield _csv_lines(rows)


async def _then(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


def _xlsx_cell(sheet: WriteOnlyWorksheet, value: Cell) -> WriteOnlyCell | Cell:
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, ILLEGAL_CHARACTERS_RE.sub("", value))
    cell.data_type = "s"  # text stays text: a name like "=HYPERLINK(...)" is not a formula
    return cell


async def _xlsx(pool: AsyncConnectionPool, filters: OrderFilter) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("orders")
    sheet.append(list(EXPORT_HEADER))
    async with pool.connection() as conn, conn.transaction():
        await _snapshot(conn)
        async for rows in export_rows(conn, filters):
            for row in rows:
                sheet.append([_xlsx_cell(sheet, v) for v in row])
    buffer = io.BytesIO()
    await run_in_threadpool(book.save, buffer)
    return buffer.getvalue()
