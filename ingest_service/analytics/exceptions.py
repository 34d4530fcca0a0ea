"""Exceptions opened in the range, by kind and by day (UTC)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection, sql
from pydantic import BaseModel, Field

from ingest_service.storage import StorageMode

from .files import Sheet
from .query import Range, utc_day

# An exception's site: its order's origin, else its trip's. With a site asked for, those
# tied to neither (raised by hand about nothing in particular) are left out.
_BY_DAY = sql.SQL("""
SELECT {day} AS day, x.kind, count(*), count(*) FILTER (WHERE x.status <> 'resolved')
FROM exceptions x
LEFT JOIN orders o ON o.id = x.order_id
LEFT JOIN trips t ON t.id = x.trip_id
WHERE x.opened_at >= %(start)s AND x.opened_at < %(end)s
  AND (%(site)s::text IS NULL OR coalesce(o.origin_site, t.origin_site) = %(site)s)
GROUP BY 1, 2 ORDER BY 1, 2
""")


class ExceptionDayRow(BaseModel):
    day: date
    kind: str
    count: int
    unresolved: int = Field(description="of those, not resolved now")


class KindTotal(BaseModel):
    kind: str
    count: int
    unresolved: int


class ExceptionsReport(BaseModel):
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    total: int
    by_kind: list[KindTotal] = Field(description="most frequent first")
    rows: list[ExceptionDayRow]

    def sheets(self) -> list[Sheet]:
        return [
            Sheet.of("exceptions", ExceptionDayRow, self.rows),
            Sheet.of("by_kind", KindTotal, self.by_kind),
        ]


async def exceptions_report(
    conn: AsyncConnection[Any], mode: StorageMode, *, span: Range, site: str | None = None
) -> ExceptionsReport:
    query = _BY_DAY.format(day=utc_day(mode, "x.opened_at"))
    cur = await conn.execute(query, {"start": span.start, "end": span.end, "site": site})
    rows = [
        ExceptionDayRow(day=day, kind=kind, count=n, unresolved=u)
        for day, kind, n, u in await cur.fetchall()
    ]
    counts: Counter[str] = Counter()
    unresolved: Counter[str] = Counter()
    for r in rows:
        counts[r.kind] += r.count
        unresolved[r.kind] += r.unresolved
    by_kind = [
        KindTotal(kind=k, count=n, unresolved=unresolved[k])
        for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return ExceptionsReport(start=span.start, end=span.end, total=sum(counts.values()),
                            by_kind=by_kind, rows=rows)  # fmt: skip
