"""Reports as files: the first table as CSV, every table as a sheet of one XLSX workbook.

As the order export does (ingest_service/api/routers/order_exports.py): UTF-8 CSV with CRLF
rows, times in ISO 8601, and text cells in XLSX always typed as text, so a value such as
"=HYPERLINK(...)" from a door's or vehicle's name is never a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from pydantic import BaseModel

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class Sheet:
    name: str
    columns: tuple[str, ...]
    rows: list[tuple[Cell, ...]]

    @classmethod
    def of(cls, name: str, model: type[BaseModel], rows: Sequence[BaseModel]) -> Sheet:
        """One column per field of `model`, in its order."""
        columns = tuple(model.model_fields)
        return cls(name, columns, [tuple(_cell(getattr(r, c)) for c in columns) for r in rows])


def _cell(value: Any) -> Cell:
    if isinstance(value, datetime | date):
        return value.isoformat()  # Excel has no time zones: keep the offset as text
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def to_csv(sheet: Sheet) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(sheet.columns)
    writer.writerows(["" if v is None else v for v in row] for row in sheet.rows)
    return out.getvalue().encode("utf-8")


def _xlsx_cell(ws: WriteOnlyWorksheet, value: Cell) -> WriteOnlyCell | Cell:
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(ws, ILLEGAL_CHARACTERS_RE.sub("", value))
    cell.data_type = "s"
    return cell


def to_xlsx(sheets: Sequence[Sheet]) -> bytes:
    """Blocking (openpyxl): run it in a thread from async code."""
    book = Workbook(write_only=True)
    for sheet in sheets:
        ws = book.create_sheet(sheet.name[:31])
        ws.append(list(sheet.columns))
        for row in sheet.rows:
            ws.append([_xlsx_cell(ws, v) for v in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
